using System.Diagnostics;

namespace Beemesh.EndToEnd.Tests.Support;

public class PseudoRandomStreamTests
{
    [SkippableFact]
    public async Task Matches_openssl_aes_128_ctr_over_zeros()
    {
        Skip.If(BeemeshEnvironment.FindOnPath("openssl") is null, "openssl is not installed");
        const int Length = 1 << 20;
        var info = new ProcessStartInfo("sh") { RedirectStandardOutput = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"openssl enc -aes-128-ctr -K {PseudoRandomStream.KeyHex} -iv 00000000000000000000000000000000 -nosalt -in /dev/zero 2>/dev/null | head -c {Length}");
        using var process = Process.Start(info)!;
        using var bytes = new MemoryStream();
        await process.StandardOutput.BaseStream.CopyToAsync(bytes);
        await process.WaitForExitAsync();
        var expected = bytes.ToArray();
        using var stream = new PseudoRandomStream();
        var actual = new byte[Length];

        stream.Fill(actual.AsSpan(0, 4096));
        stream.Fill(actual.AsSpan(4096));

        Assert.Equal(Length, expected.Length);
        Assert.Equal(expected, actual);
    }
}
