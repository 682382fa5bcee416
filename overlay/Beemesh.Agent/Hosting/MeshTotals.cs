using System.Globalization;
using System.Text;
using Beemesh.Agent.Client;

namespace Beemesh.Agent.Hosting;

/// <summary>
/// The mesh counters of every sidecar, summed for <c>/metrics</c>: the latest cumulative report of
/// each registered workload, plus the final totals of workloads that left (folded into the series
/// <c>workload="(departed)"</c>), so the sum of every counter family never goes backwards when a
/// workload unregisters. Registrations sharing a name and namespace are summed under one label.
/// Thread-safe (one lock; reports arrive every few seconds per sidecar).
/// </summary>
internal sealed class MeshTotals
{
    /// <summary>Label value under which workloads that left are kept.</summary>
    public const string Departed = "(departed)";

    /// <summary>Histogram bounds the agent renders; reports with other bounds contribute no histogram.</summary>
    public static readonly IReadOnlyList<double> HandshakeBounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

    private readonly Lock _gate = new();
    private readonly Dictionary<string, (string Label, MeshCounterReport Report)> _current = new(StringComparer.Ordinal);
    // Recently departed ids, so a report that raced with an unregistration is dropped. The race lasts
    // one request, so only the latest ids are kept: an agent that runs for months must not grow.
    private const int DepartedIdsKept = 1024;
    private readonly HashSet<string> _departedIds = new(StringComparer.Ordinal);
    private readonly Queue<string> _departedOrder = new();
    private Totals? _departed;

    /// <summary>Replaces the counters of workload <paramref name="id"/> (shown as <paramref name="label"/>).</summary>
    public void Update(string id, string label, MeshCounterReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        lock (_gate)
        {
            // A report that raced with the unregistration must not bring the workload back.
            if (!_departedIds.Contains(id))
            {
                _current[id] = (label, report);
            }
        }
    }

    /// <summary>Workload <paramref name="id"/> left: its last counters move to the departed totals.</summary>
    public void Depart(string id)
    {
        lock (_gate)
        {
            if (_departedIds.Add(id))
            {
                _departedOrder.Enqueue(id);
                if (_departedOrder.Count > DepartedIdsKept)
                {
                    _departedIds.Remove(_departedOrder.Dequeue());
                }
            }

            if (_current.Remove(id, out var entry))
            {
                _departed ??= new Totals();
                _departed.Add(entry.Report, includeGauges: false);
            }
        }
    }

    /// <summary>Appends every <c>beemesh_mesh_*</c> family with HELP and TYPE lines.</summary>
    public void Render(StringBuilder text)
    {
        var byLabel = new SortedDictionary<string, Totals>(StringComparer.Ordinal);
        lock (_gate)
        {
            foreach ((string label, MeshCounterReport report) in _current.Values)
            {
                if (!byLabel.TryGetValue(label, out Totals? totals))
                {
                    byLabel[label] = totals = new Totals();
                }

                totals.Add(report, includeGauges: true);
            }

            if (_departed is not null)
            {
                byLabel[Departed] = _departed.Copy();
            }
        }

        Family(text, "beemesh_mesh_connections_opened_total", "counter", "Inbound mesh connections accepted by the sidecars.");
        foreach (var (label, t) in byLabel)
        {
            Sample(text, "beemesh_mesh_connections_opened_total", label, null, t.ConnectionsOpened);
        }

        Family(text, "beemesh_mesh_connections_active", "gauge", "Inbound mesh connections live at the sidecars' last report.");
        foreach (var (label, t) in byLabel)
        {
            if (label != Departed)
            {
                Sample(text, "beemesh_mesh_connections_active", label, null, t.ConnectionsActive);
            }
        }

        Family(text, "beemesh_mesh_bytes_total", "counter", "Bytes carried through inbound mesh connections, by direction relative to the workload.");
        foreach (var (label, t) in byLabel)
        {
            Sample(text, "beemesh_mesh_bytes_total", label, "direction=\"to_workload\"", t.BytesToWorkload);
            Sample(text, "beemesh_mesh_bytes_total", label, "direction=\"from_workload\"", t.BytesFromWorkload);
        }

        Family(text, "beemesh_mesh_tls_handshakes_total", "counter", "mTLS handshakes of tunnel connections, by side (server: inbound, client: outbound) and result.");
        foreach (var (label, t) in byLabel)
        {
            Sample(text, "beemesh_mesh_tls_handshakes_total", label, "side=\"server\",result=\"ok\"", t.Server.Count);
            Sample(text, "beemesh_mesh_tls_handshakes_total", label, "side=\"server\",result=\"failed\"", t.Server.Failures);
            Sample(text, "beemesh_mesh_tls_handshakes_total", label, "side=\"client\",result=\"ok\"", t.Client.Count);
            Sample(text, "beemesh_mesh_tls_handshakes_total", label, "side=\"client\",result=\"failed\"", t.Client.Failures);
        }

        Family(text, "beemesh_mesh_tls_handshake_duration_seconds", "histogram", "Duration of completed mTLS handshakes of tunnel connections.");
        foreach (var (label, t) in byLabel)
        {
            Histogram(text, label, "server", t.Server);
            Histogram(text, label, "client", t.Client);
        }

        Family(text, "beemesh_mesh_authorization_decisions_total", "counter", "Authorization decisions of the sidecars, by decision and trigger (connect: new flow; the others: re-evaluation of live connections).");
        foreach (var (label, t) in byLabel)
        {
            foreach (var (trigger, value) in t.Allowed)
            {
                Sample(text, "beemesh_mesh_authorization_decisions_total", label, $"decision=\"allow\",trigger=\"{Escape(trigger)}\"", value);
            }

            foreach (var (trigger, value) in t.Denied)
            {
                Sample(text, "beemesh_mesh_authorization_decisions_total", label, $"decision=\"deny\",trigger=\"{Escape(trigger)}\"", value);
            }
        }

        Family(text, "beemesh_mesh_revocations_total", "counter", "Live mesh connections cut by continuous authorization, by trigger.");
        foreach (var (label, t) in byLabel)
        {
            foreach (var (trigger, value) in t.Revocations)
            {
                Sample(text, "beemesh_mesh_revocations_total", label, $"trigger=\"{Escape(trigger)}\"", value);
            }
        }

        Family(text, "beemesh_mesh_connections_kept_at_svid_expiry_total", "counter", "Live connections kept when their handshake SVID expired because the caller was still a mesh workload.");
        foreach (var (label, t) in byLabel)
        {
            Sample(text, "beemesh_mesh_connections_kept_at_svid_expiry_total", label, null, t.KeptAtSvidExpiry);
        }

        Family(text, "beemesh_mesh_svid_rotations_total", "counter", "Rotations of the sidecars' own X509-SVIDs.");
        foreach (var (label, t) in byLabel)
        {
            Sample(text, "beemesh_mesh_svid_rotations_total", label, null, t.SvidRotations);
        }

        Family(text, "beemesh_mesh_tunnel_client_connections_total", "counter", "Outbound tunnel connections the sidecars opened, by transport (tcp: TLS over TCP; quic: a stream of a QUIC connection to the destination node).");
        foreach (var (label, t) in byLabel)
        {
            foreach (string transport in Transports)
            {
                Sample(text, "beemesh_mesh_tunnel_client_connections_total", label, $"transport=\"{transport}\"", t.TunnelConnections.GetValueOrDefault(transport));
            }
        }

        Family(text, "beemesh_mesh_quic_fallbacks_total", "counter", "Outbound tunnel connections that went over TCP because the QUIC connection to their node failed (the node then stays on TCP for a while).");
        foreach (var (label, t) in byLabel)
        {
            Sample(text, "beemesh_mesh_quic_fallbacks_total", label, null, t.QuicFallbacks);
        }

        Family(text, "beemesh_state_eventual_entries_total", "counter", "Entries of eventual state stores sent to other replicas (pushed), received from them, and received entries that changed the local replica (merged).");
        foreach (var (label, t) in byLabel)
        {
            foreach (string what in EventualEntryEvents)
            {
                Sample(text, "beemesh_state_eventual_entries_total", label, $"event=\"{what}\"", t.EventualState.GetValueOrDefault(what));
            }
        }

        Family(text, "beemesh_state_eventual_digest_rounds_total", "counter", "Anti-entropy digests eventual state stores sent to other replicas (one per peer per round).");
        foreach (var (label, t) in byLabel)
        {
            Sample(text, "beemesh_state_eventual_digest_rounds_total", label, null, t.EventualState.GetValueOrDefault("digest_rounds"));
        }

        Family(text, "beemesh_state_eventual_refused_frames_total", "counter", "Replication frames of eventual state stores refused (too large, malformed, unknown kind); each closed its connection.");
        foreach (var (label, t) in byLabel)
        {
            Sample(text, "beemesh_state_eventual_refused_frames_total", label, null, t.EventualState.GetValueOrDefault("refused_frames"));
        }

        Family(text, "beemesh_state_eventual_failed_exchanges_total", "counter", "Pushes and anti-entropy exchanges with another replica that failed (unreachable, hung up, timed out).");
        foreach (var (label, t) in byLabel)
        {
            Sample(text, "beemesh_state_eventual_failed_exchanges_total", label, null, t.EventualState.GetValueOrDefault("failed_exchanges"));
        }

        foreach ((string name, string key, string helpText) in EventualJournalFamilies)
        {
            Family(text, name, "counter", helpText);
            foreach (var (label, t) in byLabel)
            {
                Sample(text, name, label, null, t.EventualState.GetValueOrDefault(key));
            }
        }

        Family(text, "beemesh_mesh_tunnel_stream_limit_connections_total", "counter", "Outbound tunnel connections opened because every connection to the same destination was at the peer's concurrent-stream limit.");
        foreach (var (label, t) in byLabel)
        {
            Sample(text, "beemesh_mesh_tunnel_stream_limit_connections_total", label, null, t.StreamLimitConnections);
        }

        Family(text, "beemesh_mesh_tunnel_idle_closed_total", "counter", "Tunnel connections (either side) closed with a GOAWAY after carrying no flow for their idle period.");
        foreach (var (label, t) in byLabel)
        {
            Sample(text, "beemesh_mesh_tunnel_idle_closed_total", label, null, t.IdleClosed);
        }

        Family(text, "beemesh_mesh_tunnel_connections_lost_total", "counter",
            "Tunnel connections (either side) closed because the peer stopped answering keep-alive PINGs (keepalive_timeout) or sent PINGs past its budget (ping_flood).");
        foreach (var (label, t) in byLabel)
        {
            foreach (string reason in LostReasons)
            {
                Sample(text, "beemesh_mesh_tunnel_connections_lost_total", label, $"reason=\"{reason}\"", t.TunnelConnectionsLost.GetValueOrDefault(reason));
            }
        }

        Family(text, "beemesh_mesh_tunnel_flows_lost_total", "counter",
            "Flows reset (RST_STREAM or RST to the workload) because their tunnel connection was closed by the keep-alive or the PING budget, by reason.");
        foreach (var (label, t) in byLabel)
        {
            foreach (string reason in LostReasons)
            {
                Sample(text, "beemesh_mesh_tunnel_flows_lost_total", label, $"reason=\"{reason}\"", t.TunnelFlowsLost.GetValueOrDefault(reason));
            }
        }
    }

    /// <summary>The reasons a tunnel connection is counted as lost (a report's other keys are ignored).</summary>
    private static readonly string[] LostReasons = ["keepalive_timeout", "ping_flood"];

    /// <summary>The entry events of eventual stores rendered.</summary>
    private static readonly string[] EventualEntryEvents = ["pushed", "received", "merged"];

    private static readonly (string Name, string Key, string Help)[] EventualJournalFamilies =
    [
        ("beemesh_state_eventual_journal_dropped_records_total", "journal_dropped_records", "Records of eventual stores' journals dropped at load (cut short, failing their checksum, undecodable; a bad snapshot counts its records and itself)."),
        ("beemesh_state_eventual_journal_dropped_bytes_total", "journal_dropped_bytes", "Bytes of eventual stores' journals dropped at load with those records."),
        ("beemesh_state_eventual_journal_syncs_total", "journal_syncs", "Times eventual stores' journals were flushed to the disk (fsync)."),
        ("beemesh_state_eventual_journal_compactions_total", "journal_compactions", "Eventual stores' journal logs compacted into a snapshot."),
        ("beemesh_state_eventual_journal_failures_total", "journal_failures", "Eventual stores' journal writes, flushes or compactions that failed (the disk full or failing)."),
    ];

    /// <summary>The transports rendered (a report's other keys are ignored).</summary>
    private static readonly string[] Transports = ["tcp", "quic"];

    private static void Histogram(StringBuilder text, string label, string side, HandshakeTotals h)
    {
        const string name = "beemesh_mesh_tls_handshake_duration_seconds";
        long cumulative = 0;
        for (int i = 0; i < HandshakeBounds.Count; i++)
        {
            cumulative += h.Buckets[i];
            Sample(text, name + "_bucket", label, $"side=\"{side}\",le=\"{HandshakeBounds[i].ToString(CultureInfo.InvariantCulture)}\"", cumulative);
        }

        cumulative += h.Buckets[HandshakeBounds.Count];
        Sample(text, name + "_bucket", label, $"side=\"{side}\",le=\"+Inf\"", cumulative);
        text.Append(name).Append("_sum{workload=\"").Append(Escape(label)).Append("\",side=\"").Append(side).Append("\"} ")
            .Append(h.SumSeconds.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        Sample(text, name + "_count", label, $"side=\"{side}\"", cumulative);
    }

    private static void Family(StringBuilder text, string name, string type, string help)
    {
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
    }

    private static void Sample(StringBuilder text, string name, string label, string? labels, long value)
    {
        text.Append(name).Append("{workload=\"").Append(Escape(label)).Append('"');
        if (labels is not null)
        {
            text.Append(',').Append(labels);
        }

        text.Append("} ").Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }

    /// <summary>Escapes a label value as the text format requires (backslash, quote, newline).</summary>
    private static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>Counters summed over several reports.</summary>
    private sealed class Totals
    {
        public long ConnectionsOpened;
        public long ConnectionsActive;
        public long BytesToWorkload;
        public long BytesFromWorkload;
        public long KeptAtSvidExpiry;
        public long SvidRotations;
        public long QuicFallbacks;
        public long StreamLimitConnections;
        public long IdleClosed;
        public SortedDictionary<string, long> TunnelConnections = new(StringComparer.Ordinal);
        public SortedDictionary<string, long> TunnelConnectionsLost = new(StringComparer.Ordinal);
        public SortedDictionary<string, long> TunnelFlowsLost = new(StringComparer.Ordinal);
        public HandshakeTotals Server = new();
        public HandshakeTotals Client = new();
        public SortedDictionary<string, long> Allowed = new(StringComparer.Ordinal);
        public SortedDictionary<string, long> Denied = new(StringComparer.Ordinal);
        public SortedDictionary<string, long> Revocations = new(StringComparer.Ordinal);
        public SortedDictionary<string, long> EventualState = new(StringComparer.Ordinal);

        public void Add(MeshCounterReport r, bool includeGauges)
        {
            ConnectionsOpened += r.ConnectionsOpened;
            if (includeGauges)
            {
                ConnectionsActive += r.ConnectionsActive;
            }

            BytesToWorkload += r.BytesToWorkload;
            BytesFromWorkload += r.BytesFromWorkload;
            KeptAtSvidExpiry += r.KeptAtSvidExpiry;
            SvidRotations += r.SvidRotations;
            QuicFallbacks += r.QuicFallbacks;
            StreamLimitConnections += r.StreamLimitConnections;
            IdleClosed += r.IdleClosed;
            foreach (string transport in Transports)
            {
                TunnelConnections[transport] = TunnelConnections.GetValueOrDefault(transport) + (r.TunnelConnections?.GetValueOrDefault(transport) ?? 0);
            }

            Server.Add(r.ServerHandshakes);
            Client.Add(r.ClientHandshakes);
            AddAll(Allowed, r.Allowed);
            AddAll(Denied, r.Denied);
            AddAll(Revocations, r.Revocations);
            AddAll(EventualState, r.EventualState);
            foreach (string reason in LostReasons)
            {
                TunnelConnectionsLost[reason] = TunnelConnectionsLost.GetValueOrDefault(reason) + (r.TunnelConnectionsLost?.GetValueOrDefault(reason) ?? 0);
                TunnelFlowsLost[reason] = TunnelFlowsLost.GetValueOrDefault(reason) + (r.TunnelFlowsLost?.GetValueOrDefault(reason) ?? 0);
            }
        }

        public Totals Copy()
        {
            var copy = (Totals)MemberwiseClone();
            copy.Server = Server.Copy();
            copy.Client = Client.Copy();
            copy.Allowed = new(Allowed, StringComparer.Ordinal);
            copy.Denied = new(Denied, StringComparer.Ordinal);
            copy.Revocations = new(Revocations, StringComparer.Ordinal);
            copy.TunnelConnections = new(TunnelConnections, StringComparer.Ordinal);
            copy.EventualState = new(EventualState, StringComparer.Ordinal);
            copy.TunnelConnectionsLost = new(TunnelConnectionsLost, StringComparer.Ordinal);
            copy.TunnelFlowsLost = new(TunnelFlowsLost, StringComparer.Ordinal);
            return copy;
        }

        private static void AddAll(SortedDictionary<string, long> into, Dictionary<string, long>? from)
        {
            foreach (var (key, value) in from ?? [])
            {
                into[key] = into.GetValueOrDefault(key) + value;
            }
        }
    }

    /// <summary>A handshake histogram summed over several reports.</summary>
    private sealed class HandshakeTotals
    {
        public long Count;
        public long Failures;
        public double SumSeconds;
        public long[] Buckets = new long[HandshakeBounds.Count + 1];

        public void Add(HandshakeReport? r)
        {
            if (r is null)
            {
                return;
            }

            Failures += r.Failures;
            if (r.Bounds.Count != HandshakeBounds.Count || r.Buckets.Count != HandshakeBounds.Count + 1 || !r.Bounds.SequenceEqual(HandshakeBounds))
            {
                // Another bucket layout cannot be merged; its handshakes still count in the totals.
                Count += r.Count;
                return;
            }

            Count += r.Count;
            SumSeconds += r.SumSeconds;
            for (int i = 0; i < Buckets.Length; i++)
            {
                Buckets[i] += r.Buckets[i];
            }
        }

        public HandshakeTotals Copy() => new() { Count = Count, Failures = Failures, SumSeconds = SumSeconds, Buckets = (long[])Buckets.Clone() };
    }
}
