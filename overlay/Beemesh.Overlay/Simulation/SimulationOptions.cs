namespace Beemesh.Overlay.Simulation;

/// <summary>A simulated run: network shape, faults and the seed that makes it repeatable.</summary>
public sealed record SimulationOptions
{
    /// <summary>Number of nodes.</summary>
    public int Nodes { get; init; } = 1000;

    /// <summary>Smallest one-way link latency in milliseconds (10).</summary>
    public int LatencyMinMs { get; init; } = 10;

    /// <summary>Largest one-way link latency in milliseconds (50); each message draws uniformly between the two.</summary>
    public int LatencyMaxMs { get; init; } = 50;

    /// <summary>Probability that any one transmission is lost (0); what a loss costs depends on <see cref="LossModel"/>.</summary>
    public double Loss { get; init; }

    /// <summary>
    /// How a loss shows (<see cref="Simulation.LossModel.Tcp"/>, what the overlay runs on: a lost
    /// segment is retransmitted and delays the link; <see cref="Simulation.LossModel.Drop"/>: the
    /// message is gone, as a datagram).
    /// </summary>
    public LossModel LossModel { get; init; } = LossModel.Tcp;

    /// <summary>Fraction of nodes that crash just before the measured records are published (0).</summary>
    public double Crash { get; init; }

    /// <summary>Fraction of nodes cut off from the rest while the records are published, for <see cref="PartitionSeconds"/> (0).</summary>
    public double Partition { get; init; }

    /// <summary>How long a partition lasts before it heals (3 s).</summary>
    public double PartitionSeconds { get; init; } = 3;

    /// <summary>Seed of every random choice in the run (1).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Measured records, published one second apart by random live nodes (5).</summary>
    public int Records { get; init; } = 5;

    /// <summary>
    /// Nodes that publish the measured records, in turn (0: a new random live node for each record).
    /// With fewer publishers than records an origin publishes again, as agents do when they renew
    /// and update their records, and the nodes know where its last record came from.
    /// </summary>
    public int Publishers { get; init; }

    /// <summary>Gap between two joins in microseconds (50): 100,000 nodes join over 5 s.</summary>
    public long JoinSpacing { get; init; } = 50;

    /// <summary>Time after the last join before the first broadcast (5 s), for refills and shuffles.</summary>
    public double SettleSeconds { get; init; } = 5;

    /// <summary>Longest wait after the last measured publish (30 s); a run ends earlier once every live node holds every record.</summary>
    public double MaxWaitSeconds { get; init; } = 30;

    /// <summary>The overlay node options.</summary>
    public OverlayOptions Overlay { get; init; } = new();
}
