using System.Text;

namespace Beemesh.Netstack.Stack;

/// <summary>
/// What the stack dropped or refused, and why. Bad input is never thrown through the loop:
/// it is counted here. Written by the loop thread only; read anywhere (values may be a moment old).
/// </summary>
public sealed class StackCounters
{
    public long FramesReceived;
    public long FramesSent;
    public long MalformedFrames;
    public long BadChecksums;
    public long UnsupportedFrames;
    public long Fragments;
    public long TcpNoFlow;
    public long TcpFlowsOpened;
    public long TcpConnectFailures;
    public long TcpRefusedLimit;
    public long TcpFlowsInProcess;
    public long UdpDatagramsOut;
    public long UdpDatagramsIn;
    public long UdpSendErrors;
    public long UdpFlowsEvicted;
    public long DnsQueriesDropped;
    public long IcmpEchoAnswered;
    public long IcmpEchoForwarded;
    public long IcmpDropped;
    public long IcmpUnreachableSent;
    public long DhcpReplies;
    public long NeighborQueueDrops;
    public long MemoryTrims;
    public long HandlerFaults;

    /// <summary>IPv4 reassembly: fragments, datagrams rebuilt, and drops by reason.</summary>
    public ReassemblyCounters Reassembly { get; } = new();

    /// <summary>Prometheus text exposition of every counter (metric family beemesh_netstack_*).</summary>
    public string ToPrometheus()
    {
        var sb = new StringBuilder();
        void Add(string name, long value, string help)
        {
            sb.Append("# HELP beemesh_netstack_").Append(name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE beemesh_netstack_").Append(name).Append(" counter\n");
            sb.Append("beemesh_netstack_").Append(name).Append(' ').Append(Volatile.Read(ref value)).Append('\n');
        }

        Add("frames_received_total", FramesReceived, "Frames read from the link.");
        Add("frames_sent_total", FramesSent, "Frames written to the link.");
        Add("malformed_frames_total", MalformedFrames, "Frames dropped because a header failed validation.");
        Add("bad_checksums_total", BadChecksums, "Frames dropped for a wrong checksum.");
        Add("unsupported_frames_total", UnsupportedFrames, "Frames of a protocol the stack does not handle.");
        Add("fragments_total", Fragments, "IPv6 fragments dropped (IPv6 is not reassembled).");
        Add("ipv4_fragments_total", Reassembly.Fragments, "IPv4 fragments received.");
        Add("ipv4_reassembled_total", Reassembly.Reassembled, "IPv4 datagrams reassembled from fragments.");
        Add("ipv4_reassembly_timeouts_total", Reassembly.Timeouts, "Incomplete IPv4 datagrams dropped at the reassembly timeout.");
        Add("ipv4_reassembly_overlaps_total", Reassembly.Overlaps, "IPv4 fragments that overlapped differently; their datagram was dropped.");
        Add("ipv4_reassembly_duplicates_total", Reassembly.Duplicates, "Exact repeats of an IPv4 fragment, ignored.");
        Add("ipv4_reassembly_limit_drops_total", Reassembly.LimitDrops, "IPv4 fragments or datagrams dropped for a reassembly memory limit.");
        Add("ipv4_reassembly_malformed_total", Reassembly.Malformed, "IPv4 fragments with an impossible length or offset.");
        Add("tcp_no_flow_total", TcpNoFlow, "TCP segments for no known flow (answered with RST).");
        Add("tcp_flows_opened_total", TcpFlowsOpened, "TCP flows established.");
        Add("tcp_connect_failures_total", TcpConnectFailures, "Host connects that failed (guest got RST).");
        Add("tcp_refused_limit_total", TcpRefusedLimit, "SYNs refused because a flow limit was reached.");
        Add("tcp_flows_in_process_total", TcpFlowsInProcess, "TCP flows attached to an in-process stream (no host socket).");
        Add("udp_datagrams_out_total", UdpDatagramsOut, "UDP datagrams forwarded from the guest.");
        Add("udp_datagrams_in_total", UdpDatagramsIn, "UDP datagrams delivered to the guest.");
        Add("udp_send_errors_total", UdpSendErrors, "UDP datagrams the host socket refused.");
        Add("udp_flows_evicted_total", UdpFlowsEvicted, "UDP mappings evicted to make room (DNS share or table full).");
        Add("dns_queries_dropped_total", DnsQueriesDropped, "DNS queries over one mapping's rate, dropped.");
        Add("icmp_echo_answered_total", IcmpEchoAnswered, "Echo requests answered by the stack itself.");
        Add("icmp_echo_forwarded_total", IcmpEchoForwarded, "Echo requests sent through host ICMP sockets.");
        Add("icmp_dropped_total", IcmpDropped, "ICMP messages dropped.");
        Add("icmp_unreachable_sent_total", IcmpUnreachableSent, "Guest connections to a closed stack service answered with ICMP network unreachable.");
        Add("dhcp_replies_total", DhcpReplies, "DHCP replies sent.");
        Add("neighbor_queue_drops_total", NeighborQueueDrops, "Frames dropped while waiting for address resolution.");
        Add("memory_trims_total", MemoryTrims, "Times memory was given back after the flow count fell from a burst.");
        Add("handler_faults_total", HandlerFaults, "Exceptions contained to one flow (reset and closed) or one frame (dropped); the stack kept serving.");
        return sb.ToString();
    }
}
