using System.Buffers;
using Beemesh.Agent.Client;
using FsCheck.Xunit;

namespace Beemesh.Agent.Tests.Tunnel;

public sealed class TunnelStreamHeaderPropertyTests
{
    // Any bytes: the parser never throws, consumes nothing unless done, never more than it was given,
    // and a header it accepts emits back to exactly the bytes it consumed.
    [Property(MaxTest = 2000)]
    public bool AnyBytesParseToAnOutcomeThatRoundTrips(byte[] data)
    {
        data ??= [];
        OperationStatus status = TunnelStreamHeader.TryParse(data, out TunnelStreamHeader header, out int consumed, out string? error);
        return status switch
        {
            OperationStatus.Done => error is null && consumed <= data.Length && header.ToArray().AsSpan().SequenceEqual(data.AsSpan(0, consumed)),
            OperationStatus.NeedMoreData => error is null && consumed == 0 && data.Length < TunnelStreamHeader.MaxLength,
            OperationStatus.InvalidData => error is not null && consumed == 0,
            _ => false,
        };
    }

    // Any valid name survives emit and parse, whatever bytes follow the header.
    [Property(MaxTest = 500)]
    public bool ValidNamesRoundTripWithTheFlowsBytesLeftOver(byte[] nameSeed, byte[] rest)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-.";
        string name = new([.. (nameSeed is { Length: > 0 } ? nameSeed : [0]).Take(TunnelStreamHeader.MaxNameLength).Select(b => alphabet[b % alphabet.Length])]);
        byte[] bytes = [.. TunnelStreamHeader.ForServerName(name).ToArray(), .. rest ?? []];
        return TunnelStreamHeader.TryParse(bytes, out TunnelStreamHeader header, out int consumed, out _) == OperationStatus.Done
            && header.Name == name && consumed == TunnelStreamHeader.FixedLength + name.Length;
    }
}
