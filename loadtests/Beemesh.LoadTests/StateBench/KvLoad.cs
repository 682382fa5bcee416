using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.StateBench;

/// <summary>
/// The state benchmark's load: <c>clients</c> concurrent clients in a closed loop (each sends its
/// next request when its last one is answered), one connection each, for a fixed time after a
/// 1 s warm-up. Each client owns its keys (<c>bNNN-KKKK</c>, <see cref="KeysPerClient"/> of them,
/// written in turn) and every value is <see cref="ValueBytes"/> bytes. A run is all writes
/// (<c>readPercent</c> 0) or a mix: the client's keys are written first (not measured), then each
/// request is a read of one of them with probability <c>readPercent</c>, else a write.
/// </summary>
internal static class KvLoad
{
    /// <summary>Step name of a write.</summary>
    public const string WriteStep = "write";

    /// <summary>Step name of a read.</summary>
    public const string ReadStep = "read";

    /// <summary>Bytes per value: a JSON string (quotes included), the same bytes for every target.</summary>
    public const int ValueBytes = 100;

    /// <summary>Keys each client writes and reads.</summary>
    public const int KeysPerClient = 100;

    /// <summary>Runs the load (after <paramref name="warmUpSeconds"/> of it not counted) and returns its statistics (steps <see cref="WriteStep"/> and, with reads, <see cref="ReadStep"/>).</summary>
    public static ScenarioStats Run(string kind, string endpoint, string store, TimeSpan duration, int clients, int readPercent, CancellationToken cancellationToken, int warmUpSeconds = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(readPercent);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(readPercent, 100);
        var connections = new IKvClient[clients];
        var written = new long[clients];
        var random = new Random[clients];
        Scenario scenario = Scenario.Create("kv", async context =>
            {
                int copy = context.CopyNumber;
                IKvClient client = connections[copy];
                if (readPercent > 0 && random[copy].Next(100) < readPercent)
                {
                    string key = Key(copy, random[copy].Next(KeysPerClient));
                    return await Step.Run(ReadStep, context, async () =>
                    {
                        int length = await client.GetAsync(key, context.ScenarioCancellationToken).ConfigureAwait(false);
                        return length == ValueBytes
                            ? Response.Ok(sizeBytes: length)
                            : Response.Fail(length < 0 ? $"{key} absent" : $"{key}: {length} bytes, not {ValueBytes}");
                    }).ConfigureAwait(false);
                }

                long n = written[copy]++;
                byte[] value = Value(copy, n);
                return await Step.Run(WriteStep, context, async () =>
                {
                    await client.PutAsync(Key(copy, (int)(n % KeysPerClient)), value, context.ScenarioCancellationToken).ConfigureAwait(false);
                    return Response.Ok(sizeBytes: ValueBytes);
                }).ConfigureAwait(false);
            })
            .WithInit(async init =>
            {
                for (int i = 0; i < clients; i++)
                {
                    connections[i] = KvTargets.Create(kind, endpoint, store);
                    random[i] = new Random(i);
                }

                if (readPercent > 0)
                {
                    // Every key a read may ask for exists before measuring.
                    await Task.WhenAll(Enumerable.Range(0, clients).Select(async copy =>
                    {
                        for (int k = 0; k < KeysPerClient; k++)
                        {
                            await connections[copy].PutAsync(Key(copy, k), Value(copy, written[copy]++), init.CancellationToken).ConfigureAwait(false);
                        }
                    })).ConfigureAwait(false);
                }
            })
            .WithClean(_ =>
            {
                foreach (IKvClient? client in connections)
                {
                    client?.Dispose();
                }

                return Task.CompletedTask;
            })
            .WithWarmUpDuration(TimeSpan.FromSeconds(warmUpSeconds))
            .WithLoadSimulations(LoadSimulation.KeepConstant(clients, duration));
        return ScenarioRunner.RunAsync(cancellationToken, scenario).GetAwaiter().GetResult()[0];
    }

    /// <summary>Key <paramref name="index"/> of client <paramref name="copy"/>.</summary>
    internal static string Key(int copy, int index) => $"b{copy:D3}-{index:D4}";

    /// <summary>
    /// Write <paramref name="n"/> of client <paramref name="copy"/>'s value: a JSON string of
    /// <see cref="ValueBytes"/> bytes, quotes included, ASCII only, different for every write.
    /// </summary>
    internal static byte[] Value(int copy, long n)
    {
        byte[] value = new byte[ValueBytes];
        value.AsSpan().Fill((byte)'v');
        value[0] = (byte)'"';
        value[^1] = (byte)'"';
        string stamp = $"{copy:D3}:{n:D12}";
        for (int i = 0; i < stamp.Length; i++)
        {
            value[1 + i] = (byte)stamp[i];
        }

        return value;
    }
}
