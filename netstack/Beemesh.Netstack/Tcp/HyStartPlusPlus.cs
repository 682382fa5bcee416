namespace Beemesh.Netstack.Tcp;

/// <summary>Where <see cref="HyStartPlusPlus"/> is in the initial slow start.</summary>
public enum HyStartPhase
{
    /// <summary>Standard slow start, watching each round's minimum RTT for a rise.</summary>
    SlowStart = 0,

    /// <summary>Conservative Slow Start (CSS): growth divided by CSS_GROWTH_DIVISOR while the rise is confirmed.</summary>
    ConservativeSlowStart = 1,

    /// <summary>Finished: CSS ran its rounds, or a loss or timeout ended slow start. Standard slow start from here on.</summary>
    Done = 2,
}

/// <summary>
/// HyStart++ (RFC 9406), sans-IO: decides when the initial slow start should stop before it
/// overshoots, from the RTT samples the connection takes with its own clock. A round starts with
/// windowEnd = SND.NXT and ends when an ACK covers it. In slow start, once a round has at least
/// <see cref="RttSampleCount"/> samples and its minimum RTT is at least RttThresh (lastRoundMinRTT/8
/// clamped to [4 ms, 16 ms]) above the previous round's, the sender enters Conservative Slow Start:
/// the growth per ACK is divided by <see cref="CssGrowthDivisor"/>. If a later round's minimum
/// falls below the minimum that triggered CSS, the rise was jitter and slow start resumes;
/// after <see cref="CssRounds"/> rounds in CSS the owner sets ssthresh to cwnd and continues in
/// congestion avoidance. A loss or timeout at any point ends it (<see cref="OnCongestion"/>):
/// HyStart++ runs for the initial slow start only (RFC 9406 §4.3), later slow starts stop at
/// the ssthresh the loss set.
/// </summary>
/// <remarks>
/// The round in which CSS begins counts as the first of the <see cref="CssRounds"/> rounds (it
/// ends when its windowEnd is acknowledged). Loop thread only, like the connection that feeds it.
/// </remarks>
public sealed class HyStartPlusPlus
{
    /// <summary>MIN_RTT_THRESH (RFC 9406 §4.3): the smallest RTT rise that counts.</summary>
    public static readonly TimeSpan MinRttThreshold = TimeSpan.FromMilliseconds(4);

    /// <summary>MAX_RTT_THRESH: the largest RTT rise ever required.</summary>
    public static readonly TimeSpan MaxRttThreshold = TimeSpan.FromMilliseconds(16);

    /// <summary>MIN_RTT_DIVISOR: RttThresh is lastRoundMinRTT divided by this, clamped.</summary>
    public const int MinRttDivisor = 8;

    /// <summary>N_RTT_SAMPLE: samples a round needs before its minimum is compared.</summary>
    public const int RttSampleCount = 8;

    /// <summary>CSS_GROWTH_DIVISOR: CSS grows the window this many times slower than slow start.</summary>
    public const int CssGrowthDivisor = 4;

    /// <summary>CSS_ROUNDS: rounds in CSS before congestion avoidance.</summary>
    public const int CssRounds = 5;

    /// <summary>L for a sender that does not pace (RFC 9406 §4.3): at most 8 SMSS of growth per ACK.</summary>
    public const int UnpacedLimitSegments = 8;

    private static readonly TimeSpan Infinite = TimeSpan.MaxValue;

    private bool _roundStarted;
    private uint _windowEnd;
    private TimeSpan _lastRoundMinRtt = Infinite;
    private TimeSpan _currentRoundMinRtt = Infinite;
    private int _samples;
    private TimeSpan _cssBaselineMinRtt = Infinite;
    private int _cssRoundsDone;
    private bool _cssComplete;

    /// <summary>True when the sender paces its segments: L is then unbounded (RFC 9406 §4.3). Default false, as the stack sends in bursts.</summary>
    public bool Paced { get; init; }

    /// <summary>The current phase.</summary>
    public HyStartPhase Phase { get; private set; }

    /// <summary>The minimum RTT of the round in progress; <see cref="TimeSpan.MaxValue"/> before its first sample.</summary>
    public TimeSpan CurrentRoundMinRtt => _currentRoundMinRtt;

    /// <summary>The minimum RTT of the previous round; <see cref="TimeSpan.MaxValue"/> when it had no sample.</summary>
    public TimeSpan LastRoundMinRtt => _lastRoundMinRtt;

    /// <summary>cssBaselineMinRtt: the round minimum that started CSS; <see cref="TimeSpan.MaxValue"/> outside CSS.</summary>
    public TimeSpan CssBaselineMinRtt => _cssBaselineMinRtt;

    /// <summary>Rounds completed in the current CSS stage.</summary>
    public int CssRoundsCompleted => _cssRoundsDone;

    /// <summary>Times CSS was entered (a rise in RTT was seen).</summary>
    public int CssEntries { get; private set; }

    /// <summary>Times CSS went back to slow start because the RTT fell below its baseline.</summary>
    public int SlowStartResumptions { get; private set; }

    /// <summary>
    /// An ACK of new data in slow start: <paramref name="ack"/> is its acknowledgment number,
    /// <paramref name="sendNext"/> the highest sequence number sent so far, <paramref name="rtt"/>
    /// the RTT sample it gave (null when none, e.g. Karn's rule). Starts a new round when the ACK
    /// covers windowEnd, then moves between slow start and CSS as RFC 9406 §4.2 says.
    /// </summary>
    public void OnAck(uint ack, uint sendNext, TimeSpan? rtt)
    {
        if (Phase == HyStartPhase.Done)
        {
            return;
        }

        if (!_roundStarted || TcpSeq.Ge(ack, _windowEnd))
        {
            if (_roundStarted && Phase == HyStartPhase.ConservativeSlowStart && ++_cssRoundsDone >= CssRounds)
            {
                _cssComplete = true; // the owner reads ConsumeCssComplete and sets ssthresh = cwnd
            }

            _roundStarted = true;
            _windowEnd = sendNext;
            _lastRoundMinRtt = _currentRoundMinRtt;
            _currentRoundMinRtt = Infinite;
            _samples = 0;
        }

        if (rtt is not { } sample || sample < TimeSpan.Zero || _cssComplete)
        {
            return;
        }

        if (sample < _currentRoundMinRtt)
        {
            _currentRoundMinRtt = sample;
        }

        _samples++;
        if (_samples < RttSampleCount)
        {
            return;
        }

        if (Phase == HyStartPhase.SlowStart)
        {
            if (_lastRoundMinRtt == Infinite)
            {
                return;
            }

            TimeSpan thresh = Clamp(_lastRoundMinRtt / MinRttDivisor, MinRttThreshold, MaxRttThreshold);
            if (_currentRoundMinRtt >= _lastRoundMinRtt + thresh)
            {
                _cssBaselineMinRtt = _currentRoundMinRtt;
                _cssRoundsDone = 0;
                Phase = HyStartPhase.ConservativeSlowStart;
                CssEntries++;
            }
        }
        else if (_currentRoundMinRtt < _cssBaselineMinRtt)
        {
            // The rise was a false positive (jitter): back to slow start, HyStart++ still on.
            _cssBaselineMinRtt = Infinite;
            _cssRoundsDone = 0;
            Phase = HyStartPhase.SlowStart;
            SlowStartResumptions++;
        }
    }

    /// <summary>The window growth for <paramref name="ackedBytes"/> newly acknowledged bytes: min(N, L·SMSS), divided by CSS_GROWTH_DIVISOR in CSS.</summary>
    public double Increase(long ackedBytes, int mss)
    {
        double limit = Paced ? double.MaxValue : (double)UnpacedLimitSegments * mss;
        double n = Math.Min(ackedBytes, limit);
        return Phase == HyStartPhase.ConservativeSlowStart ? n / CssGrowthDivisor : n;
    }

    /// <summary>True once, when CSS has run <see cref="CssRounds"/> rounds: the owner sets ssthresh to cwnd and HyStart++ is done.</summary>
    public bool ConsumeCssComplete()
    {
        if (!_cssComplete)
        {
            return false;
        }

        _cssComplete = false;
        Finish();
        return true;
    }

    /// <summary>A loss, ECN mark or timeout: slow start (or CSS) ends and HyStart++ is off for the rest of the connection.</summary>
    public void OnCongestion() => Finish();

    private void Finish()
    {
        Phase = HyStartPhase.Done;
        _cssBaselineMinRtt = Infinite;
    }

    private static TimeSpan Clamp(TimeSpan v, TimeSpan lo, TimeSpan hi) => v < lo ? lo : v > hi ? hi : v;
}
