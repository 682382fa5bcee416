namespace Beemesh.Netstack.Tcp;

/// <summary>Congestion control algorithms a <see cref="TcpConnection"/> can run (<see cref="TcpConnectionOptions.CongestionControl"/>).</summary>
public enum TcpCongestionControl
{
    /// <summary>Reno slow start and congestion avoidance (RFC 5681) with NewReno recovery (RFC 6582): <see cref="NewRenoCongestionControl"/>.</summary>
    NewReno = 0,

    /// <summary>CUBIC window growth and β = 0.7 reduction (RFC 9438): <see cref="CubicCongestionControl"/>.</summary>
    Cubic = 1,
}

/// <summary>Reads the congestion control named by <see cref="Variable"/> (<c>newreno</c> or <c>cubic</c>).</summary>
public static class TcpCongestionControlSetting
{
    /// <summary>Environment variable naming the congestion control of a stack's guest flows.</summary>
    public const string Variable = "BEEMESH_TCP_CC";

    /// <summary>The value of <see cref="Variable"/>; NewReno when it is unset or blank.</summary>
    /// <exception cref="FormatException">The variable names no known algorithm; the message says so in one line.</exception>
    public static TcpCongestionControl FromEnvironment() => Parse(Environment.GetEnvironmentVariable(Variable));

    /// <summary>Parses <c>newreno</c>, <c>reno</c> or <c>cubic</c> (any case); null or blank is NewReno.</summary>
    /// <exception cref="FormatException"><paramref name="text"/> names no known algorithm.</exception>
    public static TcpCongestionControl Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return TcpCongestionControl.NewReno;
        }

        return text.Trim().ToLowerInvariant() switch
        {
            "newreno" or "reno" => TcpCongestionControl.NewReno,
            "cubic" => TcpCongestionControl.Cubic,
            _ => throw new FormatException($"{Variable}='{text}' is not a congestion control (newreno or cubic)"),
        };
    }
}
