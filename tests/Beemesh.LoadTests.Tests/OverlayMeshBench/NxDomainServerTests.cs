using System.Text;
using Beemesh.LoadTests.OverlayMeshBench;
using FsCheck.Xunit;

namespace Beemesh.LoadTests.Tests.OverlayMeshBench;

/// <summary>The NXDOMAIN-only resolver the benchmark gives a node without one.</summary>
public sealed class NxDomainServerTests
{
    /// <summary>A query for <paramref name="name"/> (type A, class IN) with RD set, plus an EDNS OPT record when asked.</summary>
    private static byte[] Query(string name, bool edns)
    {
        var q = new List<byte> { 0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, (byte)(edns ? 1 : 0) };
        foreach (string label in name.Split('.'))
        {
            q.Add((byte)label.Length);
            q.AddRange(Encoding.ASCII.GetBytes(label));
        }

        q.AddRange([0, 0, 1, 0, 1]);
        if (edns)
        {
            q.AddRange([0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        }

        return [.. q];
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AQueryGetsNxdomainWithItsIdAndQuestionAndNoRecords(bool edns)
    {
        byte[] query = Query("svc1.default", edns);
        byte[] answer = NxDomainServer.Answer(query)!;

        int questionEnd = 12 + "svc1.default".Length + 2 + 4;
        Assert.Equal(questionEnd, answer.Length);
        Assert.Equal(query.AsSpan(12, questionEnd - 12).ToArray(), answer.AsSpan(12).ToArray());
        Assert.Equal(new byte[] { 0xBE, 0xEF }, answer[..2]);
        Assert.Equal(0x81, answer[2]); // QR and the query's RD
        Assert.Equal(3, answer[3] & 0x0F); // NXDOMAIN
        Assert.Equal(new byte[] { 0, 1, 0, 0, 0, 0, 0, 0 }, answer[4..12]);
    }

    [Fact]
    public void ResponsesTruncatedQueriesAndCompressedNamesAreDropped()
    {
        byte[] query = Query("a.b", edns: false);
        byte[] response = [.. query];
        response[2] |= 0x80;
        Assert.Null(NxDomainServer.Answer(response));
        Assert.Null(NxDomainServer.Answer(query.AsSpan(0, query.Length - 1)));
        Assert.Null(NxDomainServer.Answer(query.AsSpan(0, 11)));
        byte[] pointer = [.. query[..12], 0xC0, 0x0C, 0, 1, 0, 1];
        Assert.Null(NxDomainServer.Answer(pointer));
    }

    [Property]
    public bool AnyBytesGiveNullOrAnAnswerNoLongerThanTheQuery(byte[] bytes)
    {
        byte[]? answer = NxDomainServer.Answer(bytes ?? []);
        return answer is null || (answer.Length <= bytes!.Length && (answer[2] & 0x80) != 0 && (answer[3] & 0x0F) == 3);
    }
}
