using System.Net;
using Beemesh.Agent.Workloads;
using FsCheck.Xunit;

namespace Beemesh.Agent.Tests.Workloads;

public sealed class MeshAddressPoolPropertyTests
{
    // Any sequence of keys (with repeats) gets distinct addresses per key, inside the range, never the
    // network or broadcast address, the same address on every repeat, and null only once the range is full.
    [Property(MaxTest = 300)]
    public bool AddressesAreDistinctStableAndInRange(byte[] keyIds, bool wide)
    {
        string cidr = wide ? "10.77.0.0/24" : "10.77.0.0/28";
        int usable = wide ? 254 : 14;
        var pool = new MeshAddressPool(cidr);
        var network = IPNetwork.Parse(cidr);
        var seen = new Dictionary<string, string>();
        foreach (byte id in keyIds ?? [])
        {
            string key = "ns/w" + id;
            IPAddress? address = pool.Allocate(key, _ => true);
            if (address is null)
            {
                if (seen.Count != usable || seen.ContainsKey(key))
                {
                    return false;
                }

                continue;
            }

            string text = address.ToString();
            byte last = address.GetAddressBytes()[3];
            bool ok = network.Contains(address) && last != 0 && text != (wide ? "10.77.0.255" : "10.77.0.15");
            if (!ok || (seen.TryGetValue(key, out string? earlier) ? earlier != text : seen.ContainsValue(text)))
            {
                return false;
            }

            seen[key] = text;
        }

        return true;
    }
}
