namespace Beemesh.Netstack.Tcp;

/// <summary>
/// Reno congestion control (RFC 5681) with NewReno's recovery arithmetic (RFC 6582): slow start
/// with appropriate byte counting (L = 2 SMSS, RFC 3465), congestion avoidance adding one segment
/// per window acknowledged, ssthresh = max(FlightSize / 2, 2 SMSS) on loss, window inflation and
/// partial-ACK deflation during recovery, and one segment after a timeout.
/// </summary>
public sealed class NewRenoCongestionControl : ICongestionControl
{
    private const int MaxCwnd = 1 << 30;

    private int _mss = 536;
    private int _cwnd = 10 * 536;
    private int _ssthresh = MaxCwnd;
    private long _bytesAckedCa;

    /// <inheritdoc />
    public int CongestionWindow => _cwnd;

    /// <inheritdoc />
    public int SlowStartThreshold => _ssthresh;

    /// <inheritdoc />
    public void Initialize(int mss)
    {
        _mss = Math.Max(1, mss);
        _cwnd = 10 * _mss;
    }

    /// <inheritdoc />
    public void OnAck(long ackedBytes, TimeSpan smoothedRtt, TimeSpan now)
    {
        if (_cwnd < _ssthresh)
        {
            // Slow start with appropriate byte counting, L = 2*SMSS (RFC 3465, RFC 5681 §3.1).
            _cwnd = (int)Math.Min(MaxCwnd, _cwnd + Math.Min(ackedBytes, 2L * _mss));
            return;
        }

        _bytesAckedCa += ackedBytes;
        if (_bytesAckedCa >= _cwnd)
        {
            _bytesAckedCa -= _cwnd;
            _cwnd = Math.Min(MaxCwnd, _cwnd + _mss);
        }
    }

    /// <inheritdoc />
    public void OnFastRetransmit(long flightSize, bool sack, TimeSpan now)
    {
        _ssthresh = (int)Math.Max(flightSize / 2, 2L * _mss);
        _cwnd = _ssthresh + (sack ? 0 : 3 * _mss);
    }

    /// <inheritdoc />
    public void OnRecoveryDuplicateAck() => _cwnd = Math.Min(MaxCwnd, _cwnd + _mss);

    /// <inheritdoc />
    public void OnPartialAck(long ackedBytes)
        => _cwnd = (int)Math.Max(_mss, _cwnd - ackedBytes + (ackedBytes >= _mss ? _mss : 0));

    /// <inheritdoc />
    public void OnRecoveryExit(long flightSize)
        => _cwnd = (int)Math.Min(_ssthresh, Math.Max(flightSize, _mss) + _mss);

    /// <inheritdoc />
    public void OnRetransmissionTimeout(long flightSize, bool firstTimeout, TimeSpan now)
    {
        if (firstTimeout)
        {
            _ssthresh = (int)Math.Max(flightSize / 2, 2L * _mss); // RFC 5681 §3.1 eq. 4
        }

        _cwnd = _mss; // the loss window
        _bytesAckedCa = 0;
    }
}
