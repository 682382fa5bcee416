using Beemesh.Identity.Join;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Beemesh.Identity.Tests.Join;

/// <summary>The token parser and the frame reader turn any input into a value or a specific error.</summary>
public sealed class JoinParsingPropertyTests
{
    private const string Valid = "bmt1.abcdefgh.abcdefghijklmnopqrstuvwxyz.sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Property(MaxTest = 2000)]
    public Property ArbitraryStringsParseOrFailWithAReason() => Prop.ForAll((string? text) =>
    {
        bool parsed = JoinToken.TryParse(text, out JoinToken? token, out JoinTokenError error);
        return parsed
            ? error == JoinTokenError.None && JoinToken.Parse(token!.ToString()) == token
            : error != JoinTokenError.None && token is null;
    });

    [Property(MaxTest = 2000)]
    public Property MutatedTokensParseOrFailWithAReason() => Prop.ForAll(
        Arb.From(
            from position in Gen.Choose(0, Valid.Length - 1)
            from c in Gen.Elements('a', 'z', '2', '7', '8', '1', '.', '-', 'A', ' ', '0', 'f', 'g')
            select Valid[..position] + c + Valid[(position + 1)..]),
        text =>
        {
            bool parsed = JoinToken.TryParse(text, out JoinToken? token, out JoinTokenError error);
            return parsed ? token!.ToString() == text : error != JoinTokenError.None;
        });

    [Property(MaxTest = 1000)]
    public Property ArbitraryBytesAreAMessageOrAProtocolError() => Prop.ForAll((byte[]? bytes) =>
    {
        using var stream = new MemoryStream(bytes ?? []);
        try
        {
            JoinMessage message = JoinProtocol.ReadAsync(stream, CancellationToken.None).GetAwaiter().GetResult();
            return message.Type is not null;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            return true;
        }
    });

    [Property(MaxTest = 1000)]
    public Property FramedJsonOfAnyShapeIsAMessageOrAProtocolError() => Prop.ForAll((string? json) =>
    {
        byte[] body = System.Text.Encoding.UTF8.GetBytes(json ?? string.Empty);
        byte[] frame = new byte[4 + body.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(frame, body.Length);
        body.CopyTo(frame, 4);
        using var stream = new MemoryStream(frame);
        try
        {
            return JoinProtocol.ReadAsync(stream, CancellationToken.None).GetAwaiter().GetResult().Type is not null;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            return true;
        }
    });

    [Fact]
    public async Task MessagesRoundTrip()
    {
        using var stream = new MemoryStream();
        await JoinProtocol.WriteAsync(stream, new JoinMessage { Type = "join", TokenId = "abcdefgh", NodeName = "n1", Proof = [1, 2, 3] }, CancellationToken.None);
        stream.Position = 0;
        JoinMessage read = await JoinProtocol.ReadAsync(stream, CancellationToken.None);
        Assert.Equal("join", read.Type);
        Assert.Equal("abcdefgh", read.TokenId);
        Assert.Equal([1, 2, 3], read.Proof);
        Assert.Null(read.Root);
    }
}
