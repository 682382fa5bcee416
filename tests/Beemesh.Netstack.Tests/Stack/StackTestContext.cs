using Beemesh.Netstack.Link;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Tcp;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// A <see cref="NetworkStack"/> on a <see cref="MemoryLink"/>, driven without its loop thread:
/// the test injects guest frames, pumps once and inspects the frames the stack wrote.
/// With <see cref="Vnet"/> every injected frame gets a zero virtio_net_hdr prefix.
/// </summary>
internal sealed class StackTestContext : IDisposable
{
    public StackTestContext(bool vnet = false, bool ipv6 = false, Action<StackOptions>? configure = null, ILinkDevice? link = null, Random? random = null)
    {
        Link = new MemoryLink(vnetHeader: vnet);
        Vnet = vnet;
        Options = new StackOptions { EnableIpv6 = ipv6 };
        configure?.Invoke(Options);
        Time = new FakeTimeProvider(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        // A fixed ISN key: the sequence numbers a test sees are the same on every run.
        Stack = new NetworkStack(Options, link ?? Link, Time, logger: null, random ?? new Random(1), new InitialSequenceNumbers(IsnKey));
    }

    /// <summary>The stack's ISN secret (all zero): a test can compute the sequence numbers it must see.</summary>
    public static byte[] IsnKey => new byte[InitialSequenceNumbers.KeyLength];

    public MemoryLink Link { get; }

    public bool Vnet { get; }

    public StackOptions Options { get; }

    public FakeTimeProvider Time { get; }

    public NetworkStack Stack { get; }

    public StackCounters Counters => Stack.Counters;

    /// <summary>Injects an Ethernet frame (prefixed with a zero vnet header when the link has one).</summary>
    public void Inject(byte[] ethernetFrame) => Link.Inject(Vnet ? TestFrames.WithVnet(ethernetFrame) : ethernetFrame);

    /// <summary>Injects a frame exactly as given (the caller wrote any vnet header).</summary>
    public void InjectRaw(byte[] frame) => Link.Inject(frame);

    /// <summary>Injects, pumps once, returns what the stack wrote (raw, vnet header included if any).</summary>
    public List<byte[]> Exchange(byte[] ethernetFrame)
    {
        Inject(ethernetFrame);
        Stack.PumpOnce();
        return Link.TakeAll();
    }

    /// <summary>Like <see cref="Exchange"/> but returns the Ethernet part of each frame, each checked to be well formed.</summary>
    public List<byte[]> ExchangeEthernet(byte[] ethernetFrame)
    {
        var frames = Exchange(ethernetFrame);
        var result = new List<byte[]>(frames.Count);
        foreach (var f in frames)
        {
            EmittedFrameChecker.AssertWellFormed(f, Vnet);
            result.Add(Vnet ? f[10..] : f);
        }

        return result;
    }

    /// <summary>Asserts the stack still answers ARP for the gateway (it survived whatever came before).</summary>
    public void AssertStillAnswersArp()
    {
        var replies = ExchangeEthernet(TestFrames.ArpRequest(TestFrames.GatewayIp));
        var reply = Assert.Single(replies);
        Assert.Equal(0x0806, (reply[12] << 8) | reply[13]);
        Assert.Equal(2, reply[14 + 7]);
    }

    public void Dispose() => Stack.Dispose();
}
