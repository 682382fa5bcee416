using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Beemesh.LoadTests.StateBench;

namespace Beemesh.LoadTests.Tests.StateBench;

/// <summary>The state driver's requests and reply parsing for each protocol.</summary>
public sealed class KvClientTests
{
    [Fact]
    public void ValuesAreOneHundredByteJsonStringsDifferentPerWrite()
    {
        byte[] a = KvLoad.Value(3, 41);
        byte[] b = KvLoad.Value(3, 42);

        Assert.Equal(KvLoad.ValueBytes, a.Length);
        Assert.Equal(JsonValueKind.String, JsonDocument.Parse(a).RootElement.ValueKind);
        Assert.NotEqual(a, b);
        Assert.NotEqual(KvLoad.Key(1, 7), KvLoad.Key(2, 7));
    }

    [Fact]
    public void TheDaprSaveBodyIsOneItemWithTheValueAsJson()
    {
        byte[] value = KvLoad.Value(0, 1);

        using JsonDocument body = JsonDocument.Parse(DaprHttpKvClient.SaveBody("b000-0001", value));

        JsonElement item = Assert.Single(body.RootElement.EnumerateArray().ToList());
        Assert.Equal("b000-0001", item.GetProperty("key").GetString());
        Assert.Equal(Encoding.ASCII.GetString(value), item.GetProperty("value").GetRawText());
    }

    [Fact]
    public void TheEtcdPutBodyCarriesBase64KeyAndValue()
    {
        byte[] value = KvLoad.Value(0, 1);

        using JsonDocument body = JsonDocument.Parse(EtcdKvClient.PutBody("k", value));

        Assert.Equal("k", Encoding.ASCII.GetString(Convert.FromBase64String(body.RootElement.GetProperty("key").GetString()!)));
        Assert.Equal(value, Convert.FromBase64String(body.RootElement.GetProperty("value").GetString()!));
    }

    [Fact]
    public void AnEtcdRangeAnswerGivesTheValueLengthOrAbsent()
    {
        string found = """{"header":{"revision":"448"},"kvs":[{"key":"YQ==","create_revision":"5","value":"aGVsbG8=","version":"2"}],"count":"1"}""";
        string absent = """{"header":{"revision":"448","raft_term":"2"}}""";

        Assert.Equal(5, EtcdKvClient.RangeValueLength(Encoding.UTF8.GetBytes(found)));
        Assert.Equal(-1, EtcdKvClient.RangeValueLength(Encoding.UTF8.GetBytes(absent)));
    }

    [Fact]
    public void RespRepliesParseWholeOrAskForMore()
    {
        Assert.True(RespReply.TryParse("+OK\r\n$3\r\n"u8, out RespReply ok, out int consumed));
        Assert.Equal(('+', "OK", 5), (ok.Kind, ok.Text, consumed));
        Assert.True(RespReply.TryParse("$5\r\nhello\r\n"u8, out RespReply bulk, out consumed));
        Assert.Equal(('$', 5, 11), (bulk.Kind, bulk.Length, consumed));
        Assert.True(RespReply.TryParse("$-1\r\n"u8, out RespReply nil, out _));
        Assert.Equal(-1, nil.Length);
        Assert.False(RespReply.TryParse("$5\r\nhel"u8, out _, out _));
        Assert.False(RespReply.TryParse("+O"u8, out _, out _));
        Assert.Throws<FormatException>(() => RespReply.TryParse("$5\r\nhelloXY"u8, out _, out _));
        Assert.Throws<FormatException>(() => RespReply.TryParse("*1\r\n"u8, out _, out _));
    }

    [Fact]
    public void RespCommandsAreArraysOfBulkStrings()
    {
        Assert.Equal("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", Encoding.ASCII.GetString(RespKvClient.Command("GET", "k", default)));
        Assert.Equal("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nab\r\n", Encoding.ASCII.GetString(RespKvClient.Command("SET", "k", "ab"u8)));
    }

    [Fact]
    public async Task ARespCallCutOffMidwayDoesNotLeaveItsReplyForTheNextCall()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var firstReceived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task server = Task.Run(async () =>
        {
            byte[] buffer = new byte[1024];
            using (Socket first = await listener.AcceptAsync())
            {
                await first.ReceiveAsync(buffer);
                firstReceived.SetResult();
                await firstCancelled.Task;
                // The late answer to the cut-off call: must never be read as the next call's.
                try
                {
                    await first.SendAsync("+OK\r\n"u8.ToArray());
                }
                catch (SocketException)
                {
                    // The client already closed that connection: as good.
                }
            }

            using Socket second = await listener.AcceptAsync();
            await second.ReceiveAsync(buffer);
            await second.SendAsync("$4\r\nabcd\r\n"u8.ToArray());
        });
        using var client = new RespKvClient("127.0.0.1:" + ((IPEndPoint)listener.LocalEndPoint!).Port);
        using var cut = new CancellationTokenSource();

        Task<int> first = client.GetAsync("k", cut.Token);
        await firstReceived.Task;
        await cut.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        firstCancelled.SetResult();

        Assert.Equal(4, await client.GetAsync("k", CancellationToken.None));
        await server;
    }

    [Fact]
    public void StateBenchOptionsTakeClientsAndSecondsAndRefuseTheRest()
    {
        StateBenchOptions? quick = StateBenchOptions.Parse(["--quick", "--clients", "4"], TextWriter.Null);
        StateBenchOptions? slow = StateBenchOptions.Parse(["--seconds", "7", "--rounds", "5"], TextWriter.Null);

        Assert.Equal((true, 4, 3, 3), (quick!.Quick, quick.Clients, quick.Seconds, quick.Rounds));
        Assert.Equal((false, 16, 7, 5), (slow!.Quick, slow.Clients, slow.Seconds, slow.Rounds));
        Assert.Null(StateBenchOptions.Parse(["--clients", "0"], TextWriter.Null));
        Assert.Null(StateBenchOptions.Parse(["--nodes", "2"], TextWriter.Null));
    }
}
