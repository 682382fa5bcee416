using System.Net;
using Beemesh.Netstack.Forwarding;

namespace Beemesh.Slirp.Tests.Api;

/// <summary>An in-memory forwarding table that refuses a host port already taken for the same protocol.</summary>
internal sealed class FakePortForwardTable : IPortForwardTable
{
    private readonly List<PortForwardRule> _rules = [];
    private readonly Lock _lock = new();
    private int _nextId = 1;

    public PortForwardRule Add(ForwardProtocol protocol, IPAddress hostAddress, int hostPort, IPAddress guestAddress, int guestPort)
    {
        lock (_lock)
        {
            if (_rules.Exists(r => r.Protocol == protocol && r.HostPort == hostPort))
            {
                throw new PortForwardException("address in use");
            }

            var rule = new PortForwardRule(_nextId++, protocol, hostAddress, hostPort, guestAddress, guestPort);
            _rules.Add(rule);
            return rule;
        }
    }

    public IReadOnlyList<PortForwardRule> List()
    {
        lock (_lock)
        {
            return [.. _rules];
        }
    }

    public bool Remove(int id)
    {
        lock (_lock)
        {
            return _rules.RemoveAll(r => r.Id == id) > 0;
        }
    }
}
