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
        OnLoop(() =>
        {
            var rule = new PortForwardRule(_nextId, protocol, hostAddress, hostPort, guestAddress, guestPort);
            var listener = PortForwardListener.Open(stack, rule);
            _nextId++;
            _rules[rule.Id] = listener;
            return rule;
        });

    public IReadOnlyList<PortForwardRule> List() => OnLoop(() => (IReadOnlyList<PortForwardRule>)_rules.Values.Select(l => l.Rule).ToArray());

    public bool Remove(int id) => OnLoop(() =>
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

    private T OnLoop<T>(Func<T> action)
    {
        if (stack.Loop.OnLoopThread)
        {
            return action();
        }

        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        stack.Post(() =>
        {
            try
            {
                done.SetResult(action());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        try
        {
            return done.Task.WaitAsync(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
        }
        catch (TimeoutException e)
        {
            throw new PortForwardException("the network stack did not answer in time", e);
        }
    }
}
