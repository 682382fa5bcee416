using Dapr;
using Dapr.Client;

// Each check prints "ok NAME" or "FAIL NAME: why"; the exit status is the number of failures.
const string Store = "statestore";
int failures = 0;
using DaprClient client = new DaprClientBuilder().Build();

async Task Check(string name, Func<Task<string?>> body)
{
    try
    {
        string? why = await body();
        Console.WriteLine(why is null ? $"ok {name}" : $"FAIL {name}: {why}");
        failures += why is null ? 0 : 1;
    }
    catch (Exception e)
    {
        Console.WriteLine($"FAIL {name}: {e.GetType().Name}: {e.Message}");
        failures++;
    }
}

await Check("save-get", async () =>
{
    await client.SaveStateAsync(Store, "order", new Order(1, "tea"));
    Order? got = await client.GetStateAsync<Order>(Store, "order");
    return got == new Order(1, "tea") ? null : $"got {got}";
});

await Check("etag", async () =>
{
    var (_, first) = await client.GetStateAndETagAsync<Order>(Store, "order");
    await client.SaveStateAsync(Store, "order", new Order(2, "coffee"));
    bool stale = await client.TrySaveStateAsync(Store, "order", new Order(3, "stale"), first);
    var (current, etag) = await client.GetStateAndETagAsync<Order>(Store, "order");
    bool fresh = await client.TrySaveStateAsync(Store, "order", new Order(4, "fresh"), etag);
    Order? after = await client.GetStateAsync<Order>(Store, "order");
    return !stale && current == new Order(2, "coffee") && fresh && after == new Order(4, "fresh")
        ? null : $"stale={stale} current={current} fresh={fresh} after={after}";
});

await Check("first-write", async () =>
{
    try
    {
        await client.SaveStateAsync(Store, "order", new Order(5, "second"), new StateOptions { Concurrency = ConcurrencyMode.FirstWrite });
        return "first-write on an existing key was accepted";
    }
    catch (DaprException)
    {
        Order? kept = await client.GetStateAsync<Order>(Store, "order");
        await client.SaveStateAsync(Store, "fresh-key", new Order(6, "new"), new StateOptions { Concurrency = ConcurrencyMode.FirstWrite });
        Order? created = await client.GetStateAsync<Order>(Store, "fresh-key");
        return kept == new Order(4, "fresh") && created == new Order(6, "new") ? null : $"kept={kept} created={created}";
    }
});

await Check("delete", async () =>
{
    var (_, etag) = await client.GetStateAndETagAsync<Order>(Store, "fresh-key");
    await client.SaveStateAsync(Store, "fresh-key", new Order(7, "changed"));
    bool stale = await client.TryDeleteStateAsync(Store, "fresh-key", etag);
    await client.DeleteStateAsync(Store, "fresh-key");
    Order? gone = await client.GetStateAsync<Order>(Store, "fresh-key");
    return !stale && gone is null ? null : $"stale={stale} gone={gone}";
});

await Check("bulk", async () =>
{
    await client.SaveBulkStateAsync(Store, new List<SaveStateItem<Order>>
    {
        new("b1", new Order(11, "one"), null!),
        new("b2", new Order(12, "two"), null!),
    });
    IReadOnlyList<BulkStateItem> items = await client.GetBulkStateAsync(Store, ["b1", "b2", "b3"], parallelism: 2);
    var byKey = items.ToDictionary(i => i.Key);
    return byKey.Count == 3 && byKey["b1"].Value.Contains("\"one\"", StringComparison.Ordinal) &&
        byKey["b2"].Value.Contains("\"two\"", StringComparison.Ordinal) && string.IsNullOrEmpty(byKey["b3"].Value) &&
        !string.IsNullOrEmpty(byKey["b1"].ETag)
        ? null : string.Join(", ", items.Select(i => $"{i.Key}={i.Value}/{i.ETag}"));
});

await Check("transaction", async () =>
{
    byte[] value = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new Order(21, "tx"));
    await client.ExecuteStateTransactionAsync(Store, new List<StateTransactionRequest>
    {
        new("t1", value, StateOperationType.Upsert),
        new("b1", null, StateOperationType.Delete),
    });
    Order? t1 = await client.GetStateAsync<Order>(Store, "t1");
    Order? b1 = await client.GetStateAsync<Order>(Store, "b1");
    try
    {
        await client.ExecuteStateTransactionAsync(Store, new List<StateTransactionRequest>
        {
            new("t2", value, StateOperationType.Upsert),
            new("t1", value, StateOperationType.Upsert, etag: "1-1"),
        });
        return "a transaction with a stale etag was accepted";
    }
    catch (DaprException)
    {
    }

    Order? t2 = await client.GetStateAsync<Order>(Store, "t2");
    return t1 == new Order(21, "tx") && b1 is null && t2 is null ? null : $"t1={t1} b1={b1} t2={t2}";
});

await Check("ttl", async () =>
{
    await client.SaveStateAsync(Store, "short", new Order(31, "ttl"), metadata: new Dictionary<string, string> { ["ttlInSeconds"] = "1" });
    Order? first = await client.GetStateAsync<Order>(Store, "short");
    if (first != new Order(31, "ttl"))
    {
        return $"not readable before it expires: {first}";
    }

    // The behaviour is a time bound: gone after 1 s, looked at for up to 10 s.
    var clock = System.Diagnostics.Stopwatch.StartNew();
    while (clock.Elapsed < TimeSpan.FromSeconds(10))
    {
        if (await client.GetStateAsync<Order>(Store, "short") is null)
        {
            return clock.Elapsed >= TimeSpan.FromMilliseconds(500) ? null : $"gone after only {clock.Elapsed}";
        }

        await Task.Delay(200);
    }

    return "still there after 10 s";
});

await Check("scoped-key", async () =>
{
    try
    {
        await client.GetStateAsync<Order>(Store, "other-app||order");
        return "a key naming another app was accepted";
    }
    catch (DaprException)
    {
        return null;
    }
});

await Check("unknown-store", async () =>
{
    try
    {
        await client.GetStateAsync<Order>("nosuch", "order");
        return "an unknown store was accepted";
    }
    catch (DaprException)
    {
        return null;
    }
});

Console.WriteLine($"done failures={failures}");
return failures;

/// <summary>What the app stores.</summary>
internal sealed record Order(int Id, string Item);
