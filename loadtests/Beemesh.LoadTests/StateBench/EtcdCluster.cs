using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Beemesh.LoadTests.Bench;
using Beemesh.LoadTests.MeshBench;

namespace Beemesh.LoadTests.StateBench;

/// <summary>
/// A three-member etcd cluster on 127.0.0.1 (plain HTTP between members and to clients), each
/// member's data in its own directory under the bench's work directory. Durability is etcd's
/// default: the WAL is fsynced before a member acknowledges an entry.
/// </summary>
internal sealed class EtcdCluster : IAsyncDisposable
{
    private readonly List<MeshProcess> _members;

    private EtcdCluster(List<MeshProcess> members, IReadOnlyList<string> clientUrls)
    {
        _members = members;
        ClientUrls = clientUrls;
    }

    /// <summary>Each member's client URL.</summary>
    public IReadOnlyList<string> ClientUrls { get; }

    public static async Task<EtcdCluster> StartAsync(string work, CommandLog log, CancellationToken cancellationToken)
    {
        const int size = 3;
        int[] client = [.. Enumerable.Range(0, size).Select(_ => HaproxyPair.FreePort())];
        int[] peer = [.. Enumerable.Range(0, size).Select(_ => HaproxyPair.FreePort())];
        string initial = string.Join(',', Enumerable.Range(0, size).Select(i => Inv($"m{i}=http://127.0.0.1:{peer[i]}")));
        var members = new List<MeshProcess>();
        var urls = new List<string>();
        var cluster = new EtcdCluster(members, urls);
        try
        {
            for (int i = 0; i < size; i++)
            {
                string url = Inv($"http://127.0.0.1:{client[i]}");
                urls.Add(url);
                members.Add(MeshProcess.Start(
                    [
                        "etcd", "--name", Inv($"m{i}"), "--data-dir", Path.Combine(work, Inv($"etcd-m{i}")),
                        "--listen-client-urls", url, "--advertise-client-urls", url,
                        "--listen-peer-urls", Inv($"http://127.0.0.1:{peer[i]}"), "--initial-advertise-peer-urls", Inv($"http://127.0.0.1:{peer[i]}"),
                        "--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", "beemesh-state-bench",
                        "--logger", "zap", "--log-level", "warn",
                    ],
                    Path.Combine(work, Inv($"etcd-m{i}.log")), log, "etcd"));
            }

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
            await MeshBenchRunner.WaitAsync(async () =>
            {
                foreach (MeshProcess member in members)
                {
                    if (member.HasExited)
                    {
                        throw new InvalidOperationException($"etcd exited: {member.Tail()}");
                    }
                }

                foreach (string url in urls)
                {
                    try
                    {
                        string health = await http.GetStringAsync(url + "/health", cancellationToken).ConfigureAwait(false);
                        if (!health.Contains("\"health\":\"true\"", StringComparison.Ordinal))
                        {
                            return false;
                        }
                    }
                    catch (HttpRequestException)
                    {
                        return false;
                    }
                    catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        return false;
                    }
                }

                return true;
            }, "a healthy etcd cluster", cancellationToken).ConfigureAwait(false);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The client URL of the member that leads now (from <c>v3/maintenance/status</c>).</summary>
    public async Task<string> LeaderUrlAsync(CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        foreach (string url in ClientUrls)
        {
            using HttpResponseMessage response = await http.PostAsync(url + "/v3/maintenance/status", JsonContent.Create(new Dictionary<string, string>()), cancellationToken).ConfigureAwait(false);
            using JsonDocument status = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
            string? self = status.RootElement.GetProperty("header").GetProperty("member_id").GetString();
            string? leader = status.RootElement.GetProperty("leader").GetString();
            if (self is not null && self == leader)
            {
                return url;
            }
        }

        throw new InvalidOperationException("no etcd member says it leads");
    }

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        foreach (MeshProcess member in _members)
        {
            await member.DisposeAsync().ConfigureAwait(false);
        }
    }
}
