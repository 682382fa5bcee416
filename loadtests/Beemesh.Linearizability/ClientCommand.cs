using System.Globalization;

namespace Beemesh.Linearizability;

/// <summary>
/// <c>client</c>: concurrent clients of one Dapr state store, recording a history to check.
/// <code>
/// client --url http://127.0.0.1:3500/v1.0/state/statestore --keys a,b,c --process 11 --process 12
///        --seed 7 --journal FILE --stop FILE --final FILE [--pause-ms 20] [--timeout-ms 10000]
/// </code>
/// Each <c>--process</c> is one client (one operation at a time) doing random reads (40%), writes of
/// values never written before (25%), compare-and-sets on the last ETag it read, or creates when it
/// has none (25%), and deletes, half of them If-Match (10%), on random keys, with up to
/// <c>--pause-ms</c> between operations. Every operation goes to the <see cref="ClientJournal"/>
/// FILE. When the file <c>--stop</c> exists the clients stop and the command prints
/// <c>client stopped</c>; when <c>--final</c> exists it reads every key once more (retrying until
/// an answer), records those reads, prints <c>final KEY=VALUE@ETAG</c> (or <c>final KEY=absent</c>)
/// per key and <c>client done</c>, and waits to be killed. Exit code 2: bad usage.
/// </summary>
public static class ClientCommand
{
    private const string Usage =
        "usage: Beemesh.Linearizability client --url URL --keys K1,K2 --process N [--process N...] --seed N --journal FILE --stop FILE --final FILE [--pause-ms N] [--timeout-ms N]";

    /// <summary>Runs the command; returns its exit code (it returns only on bad usage or when cancelled).</summary>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        string? url = null, journalPath = null, stop = null, final = null;
        string[] keys = [];
        var processes = new List<int>();
        int seed = 0, pauseMs = 20, timeoutMs = 10_000;
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i];
            if (i + 1 >= args.Count)
            {
                error.WriteLine(Usage);
                return 2;
            }

            string value = args[++i];
            bool good = true;
            switch (name)
            {
                case "--url": url = value; break;
                case "--keys": keys = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries); break;
                case "--process": good = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int p); processes.Add(p); break;
                case "--seed": good = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out seed); break;
                case "--journal": journalPath = value; break;
                case "--stop": stop = value; break;
                case "--final": final = value; break;
                case "--pause-ms": good = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out pauseMs); break;
                case "--timeout-ms": good = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out timeoutMs) && timeoutMs > 0; break;
                default: good = false; break;
            }

            if (!good)
            {
                error.WriteLine($"{name} {value}: not understood; {Usage}");
                return 2;
            }
        }

        if (url is null || !Uri.TryCreate(url, UriKind.Absolute, out Uri? storeUrl) || keys.Length == 0 || processes.Count == 0
            || journalPath is null || stop is null || final is null || processes.Distinct().Count() != processes.Count)
        {
            error.WriteLine(Usage);
            return 2;
        }

        using var http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(1) }) { Timeout = TimeSpan.FromMilliseconds(timeoutMs) };
        var client = new DaprStateClient(http, storeUrl);
        using var journal = new ClientJournal(journalPath);
        await Task.WhenAll(processes.Select(p => Task.Run(() => RunClientAsync(client, journal, keys, p, seed, pauseMs, stop, cancellationToken), cancellationToken))).ConfigureAwait(false);
        foreach (string anomaly in client.Anomalies)
        {
            output.WriteLine("anomaly " + anomaly);
        }

        output.WriteLine("client stopped");
        output.Flush();
        await WaitForFileAsync(final, cancellationToken).ConfigureAwait(false);
        foreach (string key in keys)
        {
            while (true)
            {
                KvOperation read = await client.RunAsync(KvOperation.Read(key, 0, 0, null, process: processes[0]) with { Outcome = OperationOutcome.Unknown }, journal, cancellationToken).ConfigureAwait(false);
                if (read.Outcome == OperationOutcome.Ok)
                {
                    output.WriteLine($"final {key}={(read.Value is null ? "absent" : read.Value + "@" + read.ResultEtag)}");
                    break;
                }

                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }
        }

        output.WriteLine("client done");
        output.Flush();
        await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        return 0;
    }

    private static async Task RunClientAsync(DaprStateClient client, ClientJournal journal, string[] keys, int process, int seed, int pauseMs, string stop, CancellationToken cancellationToken)
    {
        var random = new Random(unchecked((seed * 7919) + process));
        var etags = new Dictionary<string, string?>(StringComparer.Ordinal);
        long written = 0;
        while (!File.Exists(stop) && !cancellationToken.IsCancellationRequested)
        {
            string key = keys[random.Next(keys.Length)];
            string? etag = etags.GetValueOrDefault(key);
            int dice = random.Next(100);
            string value = $"p{process}-{++written}";
            KvOperation operation = dice switch
            {
                < 40 => KvOperation.Read(key, 0, 0, null, process: process),
                < 65 => KvOperation.Write(key, 0, 0, value, process: process),
                < 90 when etag is not null => KvOperation.CompareAndSet(key, 0, 0, etag, value, OperationOutcome.Unknown, process: process),
                < 90 => KvOperation.Create(key, 0, 0, value, OperationOutcome.Unknown, process: process),
                _ => KvOperation.Delete(key, 0, 0, OperationOutcome.Unknown, expected: etag is not null && random.Next(2) == 0 ? etag : null, process: process),
            };
            KvOperation ended = await client.RunAsync(operation, journal, cancellationToken).ConfigureAwait(false);
            if (ended.Kind == OperationKind.Read && ended.Outcome == OperationOutcome.Ok)
            {
                etags[key] = ended.ResultEtag;
            }
            else if (ended.Kind != OperationKind.Read)
            {
                // A write changes the ETag to one this client has not seen (Dapr's save does not return it).
                etags[key] = null;
            }

            if (pauseMs > 0)
            {
                await Task.Delay(random.Next(pauseMs + 1), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static async Task WaitForFileAsync(string path, CancellationToken cancellationToken)
    {
        while (!File.Exists(path))
        {
            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }
    }
}
