using System.Globalization;
using System.Text;

namespace Beemesh.Overlay.Simulation;

/// <summary>
/// Where the payload copies of the measured records came from, per live node and record: the first
/// copy each node received and each duplicate, by the message that carried it. A push is an eager
/// copy along a tree link; a GRAFT answer is a copy sent because the receiver grafted it; a repair is
/// a copy sent by the digest exchange (anti-entropy). A push is late when its link delayed it (on
/// <see cref="LossModel.Tcp"/> links: retransmitted, or held back behind a message that was), and a
/// sender is late when its own first copy came late: by GRAFT, by repair or by a late push.
/// </summary>
public sealed record PayloadBreakdown
{
    /// <summary>First copies that came by push.</summary>
    public required double FirstByPush { get; init; }

    /// <summary>First copies that came as a GRAFT answer.</summary>
    public required double FirstByGraft { get; init; }

    /// <summary>First copies that came by the digest exchange.</summary>
    public required double FirstByRepair { get; init; }

    /// <summary>Duplicates pushed on a link that delayed them.</summary>
    public required double DuplicatePushLateLink { get; init; }

    /// <summary>Duplicates pushed on time by a late sender (a late subtree).</summary>
    public required double DuplicatePushLateSender { get; init; }

    /// <summary>Duplicates pushed on time by a sender that was on time (two tree paths to one node).</summary>
    public required double DuplicatePushOnTime { get; init; }

    /// <summary>Duplicates that were GRAFT answers (the copy came another way first).</summary>
    public required double DuplicateGraftAnswer { get; init; }

    /// <summary>Duplicates sent by the digest exchange.</summary>
    public required double DuplicateRepair { get; init; }

    /// <summary>Copies counted as received whose arrival came after the run stopped (so not classified).</summary>
    public required double OnTheWay { get; init; }

    /// <summary>GRAFTs for a measured record sent per live node and record (each makes a link a tree link on both sides).</summary>
    public double Grafts { get; init; }

    /// <summary>PRUNEs sent on a duplicate of a measured record, per live node and record (each makes a tree link lazy).</summary>
    public double Prunes { get; init; }

    /// <summary>The breakdown lines, as <c>beemesh simulate --details</c> prints them.</summary>
    public string Format()
    {
        var inv = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.Append(string.Create(inv, $"first copies per node: {FirstByPush:0.00} push, {FirstByGraft:0.00} graft answer, {FirstByRepair:0.00} digest repair\n"));
        text.Append(string.Create(inv,
            $"duplicates per node: {DuplicatePushLateLink:0.00} push on a late link, {DuplicatePushLateSender:0.00} push from a late sender, {DuplicatePushOnTime:0.00} push on time, {DuplicateGraftAnswer:0.00} graft answer, {DuplicateRepair:0.00} digest repair, {OnTheWay:0.00} still on the way\n"));
        text.Append(string.Create(inv, $"tree changes per node: {Grafts:0.00} GRAFT, {Prunes:0.00} PRUNE sent\n"));
        return text.ToString();
    }
}
