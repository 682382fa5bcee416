namespace Beemesh.Overlay.Simulation;

/// <summary>
/// The delivery times of messages on simulated TCP connections, one per ordered pair of nodes
/// (sans-IO: the caller gives the send time and the randomness). A message is one segment; each
/// transmission of it is lost with probability <see cref="Loss"/>, and a lost one is sent again
/// after the retransmission timeout: the round trip plus <see cref="MinRetransmissionTimeout"/>
/// (Linux's RTO is the smoothed round trip plus at least its 200 ms floor), doubled after each
/// further loss. Data on one connection reaches the application in order: a message never arrives
/// before one sent earlier on the same link (head-of-line blocking). Fast retransmit and tail loss
/// probes, which often repair a loss sooner, are left out: the model errs on the slow side.
/// </summary>
public sealed class TcpLinks
{
    private readonly Dictionary<long, (long At, bool Delayed)> _lastDelivery = [];
    private readonly long _nodes;
    private int _pruneAt = 1 << 16;

    /// <summary>A model for links between <paramref name="nodes"/> nodes.</summary>
    public TcpLinks(int nodes, double loss, long minRetransmissionTimeout = 200_000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(nodes, 1);
        if (loss is < 0 or >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(loss), "loss must be at least 0 and below 1");
        }

        _nodes = nodes;
        Loss = loss;
        MinRetransmissionTimeout = minRetransmissionTimeout;
    }

    /// <summary>Probability that one transmission of a segment is lost.</summary>
    public double Loss { get; }

    /// <summary>Floor of the retransmission timeout in microseconds (200 ms, as Linux's <c>TCP_RTO_MIN</c>).</summary>
    public long MinRetransmissionTimeout { get; }

    /// <summary>Segments sent again so far.</summary>
    public long Retransmissions { get; private set; }

    /// <summary>
    /// When a message sent now from <paramref name="from"/> to <paramref name="to"/> reaches the
    /// receiver: <paramref name="latency"/> draws one transmission's one-way latency.
    /// </summary>
    public long Deliver(int from, int to, long now, Func<long> latency, Random random) => Deliver(from, to, now, latency, random, out _);

    /// <summary>
    /// As <see cref="Deliver(int, int, long, Func{long}, Random)"/>; <paramref name="delayed"/> tells
    /// whether the message is late: retransmitted, or held back behind an earlier message that was.
    /// </summary>
    public long Deliver(int from, int to, long now, Func<long> latency, Random random, out bool delayed)
    {
        ArgumentNullException.ThrowIfNull(latency);
        ArgumentNullException.ThrowIfNull(random);
        long sent = now;
        long oneWay = latency();
        delayed = false;
        long timeout = (2 * oneWay) + MinRetransmissionTimeout;
        while (Loss > 0 && random.NextDouble() < Loss)
        {
            Retransmissions++;
            delayed = true;
            sent += timeout;
            timeout *= 2;
            oneWay = latency();
        }

        long arrival = sent + oneWay;
        long key = (from * _nodes) + to;
        if (_lastDelivery.TryGetValue(key, out (long At, bool Delayed) previous) && previous.At > arrival)
        {
            // Held back behind an earlier message: late if that one was.
            delayed |= previous.Delayed;
            arrival = previous.At;
        }

        _lastDelivery[key] = (arrival, delayed);
        if (_lastDelivery.Count >= _pruneAt)
        {
            Prune(now);
        }

        return arrival;
    }

    // Links whose last message has arrived hold nothing back: forget them.
    private void Prune(long now)
    {
        foreach ((long key, (long at, _)) in _lastDelivery)
        {
            if (at <= now)
            {
                _lastDelivery.Remove(key);
            }
        }

        _pruneAt = Math.Max(1 << 16, _lastDelivery.Count * 2);
    }
}
