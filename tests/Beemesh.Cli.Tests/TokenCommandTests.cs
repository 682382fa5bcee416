using System.CommandLine;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Cli.Commands;
using Beemesh.Identity.Authority;
using Beemesh.Identity.Join;

namespace Beemesh.Cli.Tests;

public sealed class TokenCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-tok-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task PrintsAOneTimeTokenOfTheRootInTheStateDirectory()
    {
        string state = Path.Combine(_root, "first");
        using (CertificateAuthority.LoadOrCreate(state))
        {
        }

        var result = await RunAsync("token", "create", "--state-dir", state, "--ttl", "1h");
        Assert.Equal(0, result.Exit);
        JoinToken token = JoinToken.Parse(result.Out.Trim());
        using X509Certificate2 root = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(state, "ca.crt"));
        Assert.Equal(JoinToken.FingerprintOf(root), token.RootFingerprint);
        Assert.StartsWith("valid once, until ", result.Err, StringComparison.Ordinal);

        // The token is in the store the agent reads.
        (string id, DateTimeOffset expires) = Assert.Single(new JoinTokenStore(state, token.RootFingerprint).ListUsable());
        Assert.Equal(token.Id, id);
        Assert.InRange(expires - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(55), TimeSpan.FromMinutes(61));
    }

    [Fact]
    public async Task RefusesAStateDirectoryWithoutARootInOneLine()
    {
        var result = await RunAsync("token", "create", "--state-dir", Path.Combine(_root, "none"));
        Assert.Equal(1, result.Exit);
        Assert.Contains("holds no trust domain root", result.Err, StringComparison.Ordinal);
        Assert.Single(result.Err.TrimEnd('\n').Split('\n'));
        Assert.Empty(result.Out);
    }

    [Theory]
    [InlineData("15", "expected a number with a unit")]
    [InlineData("200h", "at most 7 days")]
    public async Task RefusesABadTtl(string ttl, string message)
    {
        var result = await RunAsync("token", "create", "--state-dir", _root, "--ttl", ttl);
        Assert.Equal(2, result.Exit);
        Assert.Contains(message, result.Err, StringComparison.Ordinal);
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };
        int exit = await new RootCommand("test") { TokenCommand.Create() }.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }
}
