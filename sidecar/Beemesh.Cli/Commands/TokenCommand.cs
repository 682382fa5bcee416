using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Client;
using Beemesh.Identity.Authority;
using Beemesh.Identity.Join;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh token create [--ttl 15m] [--state-dir DIR]</c>: prints a one-time join token of the
/// trust domain whose root key is in DIR (the first node's state directory). It writes the token's
/// verifier into DIR's token store directly; the store is locked per operation, so this works whether
/// or not the agent runs, and a running agent honours the token at once.
/// </summary>
public static class TokenCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var stateDir = new Option<string>("--state-dir") { Description = "State directory of the first node (holding the root key)", DefaultValueFactory = _ => AgentClient.DefaultAgentDirectory() };
        var ttl = new Option<string>("--ttl") { Description = "How long the token can be used, e.g. 15m, 1h", DefaultValueFactory = _ => "15m" };
        var create = new Command("create", "Print a one-time join token (carries a secret and the root certificate's SHA-256)") { stateDir, ttl };
        create.SetAction(async (parse, _) =>
        {
            TextWriter error = parse.InvocationConfiguration.Error;
            string ttlText = parse.GetValue(ttl)!;
            string? why = AgentCommand.TryParseDuration(ttlText, out TimeSpan lifetime)
                ? JoinTokenStore.CheckTtl(lifetime)
                : "expected a number with a unit s, m or h (e.g. 15m, 1h)";
            if (why is not null)
            {
                await error.WriteLineAsync($"beemesh token create: invalid --ttl '{ttlText}': {why}").ConfigureAwait(false);
                return 2;
            }

            string dir = parse.GetValue(stateDir)!;
            string certificatePath = Path.Combine(dir, CertificateAuthority.CertificateFileName);
            if (!File.Exists(Path.Combine(dir, CertificateAuthority.KeyFileName)) || !File.Exists(certificatePath))
            {
                await error.WriteLineAsync(NodeCredentialStore.Exists(dir)
                    ? $"beemesh token create: {dir} belongs to a joined node; tokens are created on the node holding the trust domain's root key"
                    : $"beemesh token create: {dir} holds no trust domain root; start 'beemesh agent --state-dir {dir}' once first").ConfigureAwait(false);
                return 1;
            }

            try
            {
                using X509Certificate2 root = X509CertificateLoader.LoadCertificateFromFile(certificatePath);
                JoinToken token = new JoinTokenStore(dir, JoinToken.FingerprintOf(root)).Create(lifetime);
                await parse.InvocationConfiguration.Output.WriteLineAsync(token.ToString()).ConfigureAwait(false);
                await error.WriteLineAsync($"valid once, until {DateTimeOffset.UtcNow + lifetime:yyyy-MM-dd HH:mm:ss} UTC").ConfigureAwait(false);
                return 0;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or CryptographicException)
            {
                await error.WriteLineAsync($"beemesh token create: {e.Message}").ConfigureAwait(false);
                return 1;
            }
        });
        return new Command("token", "Join tokens for nodes joining this trust domain") { create };
    }
}
