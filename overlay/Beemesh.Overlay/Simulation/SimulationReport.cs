using System.Globalization;
using System.Text;

namespace Beemesh.Overlay.Simulation;

/// <summary>What a simulated run measured.</summary>
public sealed record SimulationReport
{
    /// <summary>The shares of live nodes reported, in order.</summary>
    public static readonly double[] Shares = [0.50, 0.99, 0.9999, 1.0];

    /// <summary>Seconds for the slowest measured record to reach each share in <see cref="Shares"/>; null when a share was never reached.</summary>
    public required double?[] Seconds { get; init; }

    /// <summary>Live (not crashed) nodes.</summary>
    public required int LiveNodes { get; init; }

    /// <summary>Live nodes holding every measured record at the end (the least over records).</summary>
    public required int Reached { get; init; }

    /// <summary>GOSSIP messages carrying a measured record that reached a live node, per live node and record.</summary>
    public required double PayloadCopiesPerNode { get; init; }

    /// <summary>
    /// GOSSIP messages carrying a measured record that were sent, per live node and record: also
    /// those to crashed nodes, those across a partition and, with <see cref="LossModel.Drop"/>, those lost.
    /// </summary>
    public double PayloadSendsPerNode { get; init; }

    /// <summary>Where the received copies came from (first copies and duplicates by cause), per live node and record.</summary>
    public PayloadBreakdown? Breakdown { get; init; }

    /// <summary>Every other message sent from the first measured publish to the end, per live node and record.</summary>
    public required double ControlMessagesPerNode { get; init; }

    /// <summary>Live peers evicted as dead over the whole run.</summary>
    public required int FalseSuspicions { get; init; }

    /// <summary>Events processed.</summary>
    public required long Events { get; init; }

    /// <summary>Simulated time at the end, in seconds.</summary>
    public required double SimulatedSeconds { get; init; }

    /// <summary>The report lines, exactly as <c>beemesh simulate</c> prints them.</summary>
    public string Format()
    {
        var text = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        string[] labels = ["50%", "99%", "99.99%", "100%"];
        for (int i = 0; i < Shares.Length; i++)
        {
            string time = Seconds[i] is double s ? string.Create(inv, $"{s:0.00} s") : "not reached";
            text.Append(labels[i]).Append(": ").Append(time);
            if (i == Shares.Length - 1)
            {
                text.Append(string.Create(inv, $" ({Reached:N0} of {LiveNodes:N0} live nodes)"));
            }

            text.Append('\n');
        }

        text.Append(string.Create(inv, $"payload copies per node: {PayloadCopiesPerNode:0.00}\n"));
        text.Append(string.Create(inv, $"control messages per node: {ControlMessagesPerNode:0.0}\n"));
        text.Append(string.Create(inv, $"false suspicions: {FalseSuspicions}\n"));
        return text.ToString();
    }
}
