using System.Net;
using Beemesh.Netstack.Forwarding;
using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Nat;

namespace Beemesh.Netstack.Stack;

/// <summary>
/// The stack's live port-forwarding rules. Calls from other threads are handed to the loop and
/// waited for, so listeners and flows are only ever touched by the loop thread.
/// </summary>
internal sealed class PortForwardTable(NetworkStack stack) : IPortForwardTable
{
    private readonly SortedDictionary<int, PortForwardListener> _rules = new();
    private int _nextId = 1;

    public PortForwardRule Add(ForwardProtocol protocol, IPAddress hostAddress, int hostPort, IPAddress guestAddress, int guestPort) =>
        stack.InvokeOnLoop(() =>
        {
            var rule = new PortForwardRule(_nextId, protocol, hostAddress, hostPort, guestAddress, guestPort);
            var listener = PortForwardListener.Open(stack, rule);
            _nextId++;
            _rules[rule.Id] = listener;
            return rule;
        });

    public IReadOnlyList<PortForwardRule> List() => stack.InvokeOnLoop(() => (IReadOnlyList<PortForwardRule>)_rules.Values.Select(l => l.Rule).ToArray());

    public bool Remove(int id) => stack.InvokeOnLoop(() =>
    {
        if (!_rules.Remove(id, out var listener))
        {
            return false;
        }

        listener.Dispose();
        return true;
    });

    /// <summary>Closes every listener (stack shutdown).</summary>
    public void CloseAll()
    {
        foreach (var listener in _rules.Values)
        {
            listener.Dispose();
        }

        _rules.Clear();
    }
}
