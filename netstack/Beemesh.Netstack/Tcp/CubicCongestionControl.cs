namespace Beemesh.Netstack.Tcp;

/// <summary>
/// CUBIC congestion control (RFC 9438). After a loss the window follows
/// W_cubic(t) = C·(t − K)³ + W_max (C = 0.4, segments and seconds): concave up to the window
/// where the loss happened (W_max), flat around it, then convex probing beyond it, so its growth
/// depends on time since the loss rather than on the round-trip time. On loss the window shrinks
/// to β = 0.7 of the flight size (Reno halves it). Below the curve a Reno estimate W_est
/// (α = 3(1 − β)/(1 + β) segments per round trip, 1 once past the window before the loss)
/// sets the floor: the Reno-friendly region (§4.3), which is where a short-RTT path spends its
/// time. Fast convergence (§4.7) lowers W_max when a loss comes before the previous W_max was
/// reached. Fast recovery and the timeout window are the Reno ones
/// (<see cref="NewRenoCongestionControl"/>); ssthresh uses β (§4.6, §4.8). The initial slow start
/// runs HyStart++ (RFC 9406, <see cref="HyStartPlusPlus"/>, on by default as Linux runs HyStart
/// with CUBIC): a rise in the per-round minimum RTT slows growth to a quarter (Conservative Slow
/// Start) and, if it lasts five rounds, ends slow start there instead of at the first loss. With it
/// off, or after the first loss or timeout, slow start is Reno's (L = 2 SMSS, RFC 3465).
/// </summary>
public sealed class CubicCongestionControl : ICongestionControl
{
    /// <summary>Multiplicative decrease factor β_cubic (RFC 9438 §4.6).</summary>
    public const double Beta = 0.7;

    /// <summary>The curve's constant C in segments per second³ (RFC 9438 §5).</summary>
    public const double C = 0.4;

    private const int MaxCwnd = 1 << 30;
    private static readonly double RenoFriendlyAlpha = 3 * (1 - Beta) / (1 + Beta);

    private int _mss = 536;
    private double _cwnd = 10 * 536; // bytes; fractional growth accumulates here
    private int _ssthresh = MaxCwnd;

    // Congestion avoidance epoch (§4.2): starts at the first ACK in congestion avoidance after
    // slow start or recovery; all in bytes except K (seconds).
    private bool _epochValid;
    private TimeSpan _epochStart;
    private double _k;
    private double _wMax;        // W_max: the window just before the last reduction
    private double _cwndPrior;   // cwnd_prior: the window before the last reduction (for α)
    private double _wEst;        // W_est: the Reno estimate
    private bool _afterTimeout;  // §4.8: the first epoch after a timeout starts with K = 0

    private HyStartPlusPlus? _hyStart;

    /// <summary>Fast convergence (RFC 9438 §4.7): release bandwidth faster to new flows. Default true.</summary>
    public bool FastConvergence { get; init; } = true;

    /// <summary>Run HyStart++ (RFC 9406) in the initial slow start. Default true.</summary>
    public bool HyStart { get; init; } = true;

    /// <summary>The HyStart++ state of the initial slow start; null when <see cref="HyStart"/> is off or before <see cref="Initialize"/>.</summary>
    public HyStartPlusPlus? HyStartState => _hyStart;

    /// <inheritdoc />
    public int CongestionWindow => (int)Math.Max(_mss, Math.Min(MaxCwnd, _cwnd));

    /// <inheritdoc />
    public int SlowStartThreshold => _ssthresh;

    /// <summary>W_max in bytes: the window before the last reduction, lowered by fast convergence; 0 before any loss.</summary>
    public double MaxWindowBeforeReduction => _wMax;

    /// <summary>K in seconds: how long after the epoch started the curve comes back to W_max.</summary>
    public double TimeToMaxWindow => _k;

    /// <summary>W_est in bytes: the Reno estimate of the current epoch.</summary>
    public double RenoEstimate => _wEst;

    /// <inheritdoc />
    public void Initialize(int mss)
    {
        _mss = Math.Max(1, mss);
        _cwnd = 10 * _mss;
        _epochValid = false;
        _hyStart = HyStart ? new HyStartPlusPlus() : null;
    }

    /// <inheritdoc />
    public void OnAckSample(uint ack, uint sendMax, TimeSpan? rttSample)
    {
        if (_hyStart is { Phase: not HyStartPhase.Done } h && _cwnd < _ssthresh)
        {
            h.OnAck(ack, sendMax, rttSample);
        }
    }

    /// <inheritdoc />
    public void OnAck(long ackedBytes, TimeSpan smoothedRtt, TimeSpan now)
    {
        if (ackedBytes <= 0)
        {
            return;
        }

        if (_cwnd < _ssthresh)
        {
            if (_hyStart is { Phase: not HyStartPhase.Done } h)
            {
                // HyStart++ (RFC 9406 §4.2): min(N, L*SMSS), a quarter of it in CSS; after CSS_ROUNDS
                // rounds of CSS, congestion avoidance from the current window.
                _cwnd = Math.Min(MaxCwnd, _cwnd + h.Increase(ackedBytes, _mss));
                if (h.ConsumeCssComplete())
                {
                    _ssthresh = (int)Math.Max(2.0 * _mss, Math.Min(MaxCwnd, _cwnd));
                }

                return;
            }

            // Slow start as Reno's, appropriate byte counting with L = 2*SMSS (RFC 3465).
            _cwnd = Math.Min(MaxCwnd, _cwnd + Math.Min(ackedBytes, 2L * _mss));
            return;
        }

        if (!_epochValid)
        {
            StartEpoch(now);
        }

        double mss = _mss;
        double cwndSeg = _cwnd / mss;

        // Reno-friendly estimate (§4.3, Figure 4): α per window of acknowledged segments.
        double alpha = _wEst >= _cwndPrior ? 1.0 : RenoFriendlyAlpha;
        _wEst += alpha * ackedBytes * mss / _cwnd;

        double t = (now - _epochStart).TotalSeconds;
        double wCubic = WindowAt(t) * mss;
        if (wCubic < _wEst)
        {
            _cwnd = Math.Min(MaxCwnd, Math.Max(_cwnd, _wEst)); // Reno-friendly region
            return;
        }

        // Concave or convex region (§4.4, §4.5): aim at W_cubic one RTT ahead, at most 1.5 cwnd.
        double target = WindowAt(t + smoothedRtt.TotalSeconds);
        target = Math.Clamp(target, cwndSeg, 1.5 * cwndSeg);
        double segmentsAcked = ackedBytes / mss;
        _cwnd = Math.Min(MaxCwnd, _cwnd + (target - cwndSeg) / cwndSeg * segmentsAcked * mss);
    }

    /// <inheritdoc />
    public void OnFastRetransmit(long flightSize, bool sack, TimeSpan now)
    {
        Reduce(flightSize);
        _cwnd = _ssthresh + (sack ? 0 : 3 * _mss); // fast recovery as RFC 6582 §3.2 step 2
    }

    /// <inheritdoc />
    public void OnRecoveryDuplicateAck() => _cwnd = Math.Min(MaxCwnd, _cwnd + _mss);

    /// <inheritdoc />
    public void OnPartialAck(long ackedBytes)
        => _cwnd = Math.Max(_mss, _cwnd - ackedBytes + (ackedBytes >= _mss ? _mss : 0));

    /// <inheritdoc />
    public void OnRecoveryExit(long flightSize)
    {
        _cwnd = Math.Min(_ssthresh, Math.Max(flightSize, _mss) + _mss);
        _epochValid = false;
    }

    /// <inheritdoc />
    public void OnRetransmissionTimeout(long flightSize, bool firstTimeout, TimeSpan now)
    {
        _hyStart?.OnCongestion();
        if (firstTimeout)
        {
            Reduce(flightSize);
            _afterTimeout = true;
        }

        _cwnd = _mss; // Reno's loss window (§4.8)
        _epochValid = false;
    }

    /// <summary>W_cubic(t) in segments (RFC 9438 eq. 1).</summary>
    private double WindowAt(double t)
    {
        double d = t - _k;
        return C * d * d * d + _wMax / _mss;
    }

    // §4.6 and §4.7: remember where the loss happened, then cut ssthresh to β of the flight.
    private void Reduce(long flightSize)
    {
        _hyStart?.OnCongestion(); // RFC 9406 §4.2: a loss ends slow start and CSS for good
        double prior = _cwnd;
        _wMax = FastConvergence && prior < _wMax ? prior * (1 + Beta) / 2 : prior;
        _cwndPrior = prior;
        _ssthresh = (int)Math.Min(MaxCwnd, Math.Max(flightSize * Beta, 2.0 * _mss));
        _epochValid = false;
    }

    // §4.2: t restarts at the beginning of each congestion avoidance stage; K from eq. 2.
    private void StartEpoch(TimeSpan now)
    {
        _epochValid = true;
        _epochStart = now;
        _wEst = _cwnd;
        if (_afterTimeout || _wMax <= _cwnd)
        {
            // §4.8 after a timeout (and whenever the window is already past W_max): the curve starts
            // at the current window and is convex from the start.
            _afterTimeout = false;
            _wMax = _cwnd;
            _k = 0;
        }
        else
        {
            _k = Math.Cbrt((_wMax - _cwnd) / _mss / C);
        }

        if (_cwndPrior <= 0)
        {
            _cwndPrior = _cwnd;
        }
    }
}
