using System.Net;
using System.Text;
using Beemesh.Authorization;
using Beemesh.Netstack.Dns;
using Beemesh.Netstack.Forwarding;
using Beemesh.Netstack.Link;
using Beemesh.Netstack.Stack;
using Beemesh.Sidecar.State;
using Beemesh.Sidecar.Tunnel;
using Beemesh.Sidecar.Tunnel.Http2;
using Beemesh.Slirp.Api;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Fuzz;

/// <summary>
/// Guest frames into the stack through its entry point for a frame read from the tap (an in-memory
/// link, pumped once per frame). One input is a sequence of frames, each "u16 big-endian length,
/// bytes"; bytes left over form a last frame. The clock moves 100 ms per frame, so reassembly and
/// flow timers run. Run it in a network namespace of its own: flows the guest opens are real sockets.
/// </summary>
public sealed class PacketTarget : FuzzTarget, IDisposable
{
    private readonly MemoryLink _link = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly NetworkStack _stack;

    /// <summary>
    /// A stack with IPv6, DNS and host loopback on (the default slirp4netns surface). A fault the stack
    /// contained (counted in handler_faults_total) is a finding like an exception that escaped.
    /// </summary>
    public PacketTarget()
    {
        // A fixed ISN key, so an input replays the same conversation.
        _stack = new NetworkStack(new StackOptions { EnableIpv6 = true }, _link, _time, logger: null, new Random(1), new Beemesh.Netstack.Tcp.InitialSequenceNumbers(new byte[Beemesh.Netstack.Tcp.InitialSequenceNumbers.KeyLength]));
    }

    /// <inheritdoc />
    public override string Name => "packet";

    /// <summary>Frames the stack has written back, taken and dropped after each input.</summary>
    public long FramesOut { get; private set; }

    /// <inheritdoc />
    public override string Activity => $"frames_out={FramesOut}";

    /// <summary>The stack under test (for its counters).</summary>
    public NetworkStack Stack => _stack;

    /// <inheritdoc />
    public override void Run(ReadOnlySpan<byte> input)
    {
        foreach (ReadOnlyMemory<byte> frame in Split(input.ToArray()))
        {
            if (frame.Length > 0)
            {
                _link.Inject(frame.Span);
            }

            _stack.PumpOnce();
            _time.Advance(TimeSpan.FromMilliseconds(100));
            FramesOut += _link.TakeAll().Count;
            if (_stack.LastFault is { } fault)
            {
                // The stack contains a fault to the flow it served and keeps going; for the fuzzer
                // it is still a bug: rethrown with its own type and stack trace.
                _stack.LastFault = null;
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(fault);
            }
        }
    }

    /// <summary>Splits an input into frames ("u16 length, bytes" records, the rest as a last frame).</summary>
    public static List<ReadOnlyMemory<byte>> Split(byte[] input)
    {
        var frames = new List<ReadOnlyMemory<byte>>();
        int at = 0;
        while (at + 2 <= input.Length)
        {
            int length = (input[at] << 8) | input[at + 1];
            if (at + 2 + length > input.Length)
            {
                break;
            }

            frames.Add(input.AsMemory(at + 2, length));
            at += 2 + length;
        }

        if (at < input.Length)
        {
            frames.Add(input.AsMemory(at));
        }

        return frames;
    }

    /// <inheritdoc />
    public void Dispose() => _stack.Dispose();
}

/// <summary>
/// The slirp4netns API socket's request handler over an in-memory forward table (no host sockets):
/// every request gets a reply, an error reply for bad input.
/// </summary>
public sealed class SlirpApiTarget : FuzzTarget
{
    private readonly SlirpApiRequestHandler _handler = new(new MemoryForwardTable(), IPAddress.Parse("10.0.2.100"), ipv6: true);

    /// <inheritdoc />
    public override string Name => "slirp-api";

    /// <inheritdoc />
    public override void Run(ReadOnlySpan<byte> input)
    {
        string reply = _handler.Handle(input, out _);
        if (reply.Length == 0 || reply[0] != '{')
        {
            throw new InvalidOperationException($"the API answered something that is not a JSON object: {reply}");
        }
    }

    /// <summary>A forward table that keeps rules in memory and refuses what the real one refuses for bookkeeping.</summary>
    private sealed class MemoryForwardTable : IPortForwardTable
    {
        private readonly List<PortForwardRule> _rules = [];
        private int _next = 1;

        public PortForwardRule Add(ForwardProtocol protocol, IPAddress hostAddress, int hostPort, IPAddress guestAddress, int guestPort)
        {
            if (_rules.Any(r => r.Protocol == protocol && r.HostPort == hostPort && r.HostAddress.Equals(hostAddress)))
            {
                throw new PortForwardException("already in use");
            }

            if (_rules.Count >= 64)
            {
                _rules.RemoveAt(0);
            }

            var rule = new PortForwardRule(_next++, protocol, hostAddress, hostPort, guestAddress, guestPort);
            _rules.Add(rule);
            return rule;
        }

        public IReadOnlyList<PortForwardRule> List() => _rules;

        public bool Remove(int id) => _rules.RemoveAll(r => r.Id == id) > 0;
    }
}

/// <summary>AuthorizationPolicy YAML (UTF-8) through the loader: policies or line-numbered errors, nothing else.</summary>
public sealed class PolicyYamlTarget : FuzzTarget
{
    /// <inheritdoc />
    public override string Name => "policy-yaml";

    /// <inheritdoc />
    public override void Run(ReadOnlySpan<byte> input)
    {
        string yaml = Encoding.UTF8.GetString(input);
        bool ok = PolicyLoader.Load(yaml, out IReadOnlyList<AuthorizationPolicy> policies, out IReadOnlyList<PolicyError> errors);
        if (ok == (errors.Count > 0) || (!ok && policies.Count > 0))
        {
            throw new InvalidOperationException($"loader result {ok} with {policies.Count} policies and {errors.Count} errors");
        }
    }
}

/// <summary>
/// A Dapr component file (<c>--resources-path</c>) through <see cref="StateComponentLoader.Parse"/>:
/// it returns the components or refuses the file with a one-line <see cref="StateComponentException"/>.
/// </summary>
public sealed class StateComponentTarget : FuzzTarget
{
    /// <inheritdoc />
    public override string Name => "state-component";

    /// <inheritdoc />
    public override IReadOnlyList<Type> Documented => [typeof(StateComponentException)];

    /// <inheritdoc />
    public override void Run(ReadOnlySpan<byte> input)
    {
        try
        {
            foreach (StateComponent component in StateComponentLoader.Parse(Encoding.UTF8.GetString(input), "fuzz.yaml"))
            {
                if (StateStoreSpec.TryParse(component.Name, out _) is null || component.Consistency is not ("strong" or "eventual"))
                {
                    throw new InvalidOperationException($"accepted a component the flags would refuse: {component}");
                }
            }
        }
        catch (StateComponentException e) when (e.Message.Contains('\n', StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"a refusal of more than one line: {e.Message}");
        }
    }
}

/// <summary>
/// What a caller sends on a tunnel connection after the preface: HTTP/2 frames through the frame
/// parser, each payload parsed by its type, header blocks (with CONTINUATION) through one HPACK
/// decoder, as the connection's read loop does. Bad input is a connection or stream error.
/// </summary>
public sealed class TunnelFramesTarget : FuzzTarget
{
    /// <inheritdoc />
    public override string Name => "tunnel-frames";

    /// <inheritdoc />
    public override IReadOnlyList<Type> Documented => [typeof(Http2ConnectionException), typeof(Http2StreamException)];

    /// <inheritdoc />
    public override void Run(ReadOnlySpan<byte> input)
    {
        var decoder = new HpackDecoder(maxTableSize: 4096, maxHeaderListSize: 16 * 1024);
        var block = new System.Buffers.ArrayBufferWriter<byte>();
        bool continuing = false;
        while (FrameReader.TryReadFrame(input, 16 * 1024, out FrameHeader header, out int consumed))
        {
            ReadOnlySpan<byte> payload = input.Slice(Http2Protocol.FrameHeaderLength, header.Length);
            input = input[consumed..];
            try
            {
                if (continuing && header.Type != FrameType.Continuation)
                {
                    throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "a frame inside a header block");
                }

                ReadOnlySpan<byte> fragment = FrameReader.Check(header, payload);
                if (header.Type == FrameType.Headers)
                {
                    block.ResetWrittenCount();
                }

                if (header.Type is FrameType.Headers or FrameType.Continuation)
                {
                    System.Buffers.BuffersExtensions.Write(block, fragment);
                    continuing = !header.Has(FrameFlags.EndHeaders);
                }

                if (header.Type is FrameType.Headers or FrameType.Continuation && !continuing)
                {
                    List<HeaderField> fields = decoder.Decode(block.WrittenSpan);
                    int size = 0;
                    foreach (HeaderField field in fields)
                    {
                        size += field.Size;
                    }

                    if (size > 16 * 1024)
                    {
                        throw new InvalidOperationException($"a header list of {size} bytes passed the limit");
                    }
                }
            }
            catch (Http2StreamException)
            {
                // A stream error resets one stream; the connection reads on.
            }
        }
    }
}

/// <summary>A DNS message from the guest through the query check and the header reader.</summary>
public sealed class DnsTarget : FuzzTarget
{
    /// <inheritdoc />
    public override string Name => "dns";

    /// <inheritdoc />
    public override void Run(ReadOnlySpan<byte> input)
    {
        DnsQueryCheck check = DnsHeader.CheckQuery(input);
        if (DnsHeader.TryCreate(input, out DnsHeader header))
        {
            _ = header.Id + header.Flags + header.Opcode + (header.IsResponse ? 1 : 0) + (header.IsAuthoritative ? 1 : 0);
        }
        else if (input.Length >= DnsHeader.Length)
        {
            throw new InvalidOperationException("a message of at least 12 bytes has no header");
        }

        if (!Enum.IsDefined(check))
        {
            throw new InvalidOperationException($"undefined check result {check}");
        }
    }
}
