using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;
using Beemesh.Identity.Tests.Authority;
using Beemesh.Identity.Tests.WorkloadApi;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;

namespace Beemesh.Identity.Tests.Tls;

/// <summary>
/// The machine's trust store and SPIFFE mutual TLS. The platform reads SSL_CERT_FILE and SSL_CERT_DIR
/// once per process, so each case runs in a child test process started with a machine store of the
/// test's making: a root the machine trusts, whose private key the test holds. The child part of each
/// case is skipped in an ordinary run (it only runs when its parent started it) and writes "passed"
/// to a file when all its assertions held; the parent checks that file.
/// </summary>
public sealed class PlatformTrustStoreTests : IDisposable
{
    private const string ChildVariable = "BEEMESH_TEST_PLATFORM_STORE";
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan ChildGuard = TimeSpan.FromMinutes(3);
    private static readonly SpiffeId Web = SpiffeId.Parse("spiffe://example.org/ns/shop/sa/web");
    private static readonly SpiffeId Db = SpiffeId.Parse("spiffe://example.org/ns/shop/sa/db");

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void PeerChainingToAMachineRootIsRefused() =>
        RunChild(nameof(ChildPeerChainingToAMachineRootIsRefused), directoryHoldsRoot: false);

    [Fact]
    public void EmptiedStoreHoldsNoMachineRootAndChildProcessesKeepTheirEnvironment() =>
        RunChild(nameof(ChildEmptiedStoreHoldsNoMachineRoot), directoryHoldsRoot: true);

    /// <summary>
    /// A peer whose certificate carries a SPIFFE ID of our trust domain and chains to a root the
    /// machine trusts (but that is not in the bundle) is refused on both sides of a handshake.
    /// </summary>
    [SkippableFact]
    public async Task ChildPeerChainingToAMachineRootIsRefused()
    {
        string? resultFile = Environment.GetEnvironmentVariable(ChildVariable);
        Skip.If(resultFile is null, $"runs only in the child process started by {nameof(PeerChainingToAMachineRootIsRefused)}");
        string dir = Path.GetDirectoryName(resultFile)!;
        using X509Certificate2 machineRoot = LoadMachineRoot(dir);

        // The premise: the platform trusts this root for ordinary TLS.
        Assert.Contains(MachineRoots(), thumbprint => thumbprint == machineRoot.Thumbprint);
        using X509Certificate2 rogueWeb = IssueSvid(machineRoot, Web);
        using (var systemTrust = new X509Chain())
        {
            systemTrust.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            Assert.True(systemTrust.Build(rogueWeb));
        }

        using CertificateAuthority mesh = CertificateAuthority.LoadOrCreate(Path.Combine(dir, "mesh"));
        await using var node = new WorkloadApiFixture((state, time) => NodeTestCredentials.Join(mesh, "node-1", state, time));
        await using X509Source db = await X509Source.StartAsync(await node.StartServerAsync(Db.ToString()), node.Time).WaitAsync(Guard);
        await using X509Source web = await X509Source.StartAsync(await node.StartServerAsync(Web.ToString()), node.Time).WaitAsync(Guard);

        // The mesh's check itself, as the tunnel runs it.
        Assert.False(SpiffeTls.ValidatePeer(db, rogueWeb, null, _ => true));

        // Server side: a client presenting the rogue SVID is refused, however wide the authorization.
        Assert.False(await HandshakeAsync(
            SpiffeTls.CreateServerOptions(db, _ => true),
            new SslClientAuthenticationOptions { TargetHost = "spiffe", ClientCertificates = [rogueWeb], RemoteCertificateValidationCallback = (_, _, _, _) => true },
            serverMustSucceed: true));

        // Client side: a server presenting the rogue SVID is refused.
        Assert.False(await HandshakeAsync(
            new SslServerAuthenticationOptions { ServerCertificate = rogueWeb, ClientCertificateRequired = false },
            SpiffeTls.CreateClientOptions(db, _ => true),
            serverMustSucceed: false));

        // The same handshakes with the mesh's own SVID succeed: the refusals come from the root.
        Assert.True(await HandshakeAsync(SpiffeTls.CreateServerOptions(db, _ => true), SpiffeTls.CreateClientOptions(web, _ => true), serverMustSucceed: true));
        await File.WriteAllTextAsync(resultFile!, "passed");
    }

    /// <summary>
    /// After <see cref="PlatformTrustStore.UseEmptyStore"/>, the platform's machine store is empty
    /// (though SSL_CERT_FILE and SSL_CERT_DIR name the root), mesh TLS works, and a child process
    /// still gets the variables as they were.
    /// </summary>
    [SkippableFact]
    public async Task ChildEmptiedStoreHoldsNoMachineRoot()
    {
        string? resultFile = Environment.GetEnvironmentVariable(ChildVariable);
        Skip.If(resultFile is null, $"runs only in the child process started by {nameof(EmptiedStoreHoldsNoMachineRootAndChildProcessesKeepTheirEnvironment)}");
        string? file = Environment.GetEnvironmentVariable(PlatformTrustStore.FileVariable);
        string? directory = Environment.GetEnvironmentVariable(PlatformTrustStore.DirectoryVariable);
        Assert.NotNull(file);
        Assert.NotNull(directory);

        Assert.True(PlatformTrustStore.UseEmptyStore());
        Assert.Equal(string.Empty, PlatformTrustStore.GetNative(PlatformTrustStore.FileVariable));
        Assert.Equal(string.Empty, PlatformTrustStore.GetNative(PlatformTrustStore.DirectoryVariable));
        Assert.Equal(file, Environment.GetEnvironmentVariable(PlatformTrustStore.FileVariable));
        Assert.Equal(directory, Environment.GetEnvironmentVariable(PlatformTrustStore.DirectoryVariable));

        Assert.Empty(MachineRoots());
        string dir = Path.GetDirectoryName(resultFile)!;
        using X509Certificate2 machineRoot = LoadMachineRoot(dir);
        using X509Certificate2 rogueWeb = IssueSvid(machineRoot, Web);
        using (var systemTrust = new X509Chain())
        {
            systemTrust.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            Assert.False(systemTrust.Build(rogueWeb));
        }

        using CertificateAuthority mesh = CertificateAuthority.LoadOrCreate(Path.Combine(dir, "mesh"));
        await using var node = new WorkloadApiFixture((state, time) => NodeTestCredentials.Join(mesh, "node-1", state, time));
        await using X509Source db = await X509Source.StartAsync(await node.StartServerAsync(Db.ToString()), node.Time).WaitAsync(Guard);
        await using X509Source web = await X509Source.StartAsync(await node.StartServerAsync(Web.ToString()), node.Time).WaitAsync(Guard);
        Assert.True(await HandshakeAsync(SpiffeTls.CreateServerOptions(db, id => id == Web), SpiffeTls.CreateClientOptions(web, id => id == Db), serverMustSucceed: true));

        var start = new ProcessStartInfo("env") { RedirectStandardOutput = true };
        using Process env = Process.Start(start)!;
        string[] seen = (await env.StandardOutput.ReadToEndAsync().WaitAsync(Guard)).Split('\n');
        await env.WaitForExitAsync().WaitAsync(Guard);
        Assert.Contains($"{PlatformTrustStore.FileVariable}={file}", seen);
        Assert.Contains($"{PlatformTrustStore.DirectoryVariable}={directory}", seen);
        await File.WriteAllTextAsync(resultFile!, "passed");
    }

    /// <summary>
    /// Creates the machine root (key and certificate in the test's directory), then runs the child
    /// part <paramref name="childTest"/> of this class in a new test process whose SSL_CERT_FILE is
    /// that root and whose SSL_CERT_DIR is a directory holding it too, or an empty one.
    /// </summary>
    private void RunChild(string childTest, bool directoryHoldsRoot)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=machine root", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using X509Certificate2 root = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));
        File.WriteAllText(_dir.File("root.pem"), root.ExportCertificatePem());
        File.WriteAllText(_dir.File("root.key"), key.ExportPkcs8PrivateKeyPem());
        string certificateDirectory = Directory.CreateDirectory(_dir.File("certs")).FullName;
        if (directoryHoldsRoot)
        {
            File.WriteAllText(Path.Combine(certificateDirectory, "root.pem"), root.ExportCertificatePem());
        }

        string assembly = typeof(PlatformTrustStoreTests).Assembly.Location;
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            ArgumentList = { "test", assembly, "--filter", $"FullyQualifiedName={typeof(PlatformTrustStoreTests).FullName}.{childTest}" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment[ChildVariable] = _dir.File("result");
        start.Environment[PlatformTrustStore.FileVariable] = _dir.File("root.pem");
        start.Environment[PlatformTrustStore.DirectoryVariable] = certificateDirectory;
        using Process child = Process.Start(start)!;
        Task<string> output = child.StandardOutput.ReadToEndAsync();
        Task<string> errors = child.StandardError.ReadToEndAsync();
        Assert.True(child.WaitForExit(ChildGuard), "the child test process did not finish");
        string log = output.Result + errors.Result;
        Assert.True(child.ExitCode == 0, $"the child test failed:\n{log}");
        Assert.True(File.Exists(_dir.File("result")), $"the child test did not run:\n{log}");
        Assert.Equal("passed", File.ReadAllText(_dir.File("result")));
    }

    private static X509Certificate2 LoadMachineRoot(string dir) =>
        X509Certificate2.CreateFromPemFile(Path.Combine(dir, "root.pem"), Path.Combine(dir, "root.key"));

    private static List<string> MachineRoots()
    {
        using var store = new X509Store(StoreName.Root, StoreLocation.LocalMachine);
        store.Open(OpenFlags.ReadOnly);
        var thumbprints = new List<string>();
        foreach (X509Certificate2 certificate in store.Certificates)
        {
            thumbprints.Add(certificate.Thumbprint);
            certificate.Dispose();
        }

        return thumbprints;
    }

    /// <summary>An SVID in every respect but its issuer: <paramref name="issuer"/> signs it.</summary>
    private static X509Certificate2 IssueSvid(X509Certificate2 issuer, SpiffeId id)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("O=SPIFFE", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddUri(new Uri(id.ToString()));
        request.CertificateExtensions.Add(names.Build());
        using X509Certificate2 certificate = request.Create(issuer, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddHours(1), RandomNumberGenerator.GetBytes(12));
        using X509Certificate2 withKey = certificate.CopyWithPrivateKey(key);
        // Through PKCS#12 so that the key is usable by TLS on every platform.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>
    /// One handshake over loopback; true when both sides completed it. When the server side must
    /// be the one to decide (<paramref name="serverMustSucceed"/>), a refusal there is what counts.
    /// </summary>
    private static async Task<bool> HandshakeAsync(SslServerAuthenticationOptions serverOptions, SslClientAuthenticationOptions clientOptions, bool serverMustSucceed)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        Task<TcpClient> accept = listener.AcceptTcpClientAsync();
        await client.ConnectAsync((IPEndPoint)listener.LocalEndpoint).WaitAsync(Guard);
        using TcpClient accepted = await accept.WaitAsync(Guard);
        await using var serverTls = new SslStream(accepted.GetStream());
        await using var clientTls = new SslStream(client.GetStream());
        Task server = serverTls.AuthenticateAsServerAsync(serverOptions);
        Task clientSide = clientTls.AuthenticateAsClientAsync(clientOptions);
        bool serverOk = await Completes(serverMustSucceed ? server : clientSide);
        if (!serverOk)
        {
            // Unblock the other side.
            client.Close();
            accepted.Close();
        }

        bool otherOk = await Completes(serverMustSucceed ? clientSide : server);
        return serverOk && otherOk;
    }

    private static async Task<bool> Completes(Task handshake)
    {
        try
        {
            await handshake.WaitAsync(Guard);
            return true;
        }
        catch (Exception e) when (e is AuthenticationException or IOException or ObjectDisposedException or SocketException)
        {
            return false;
        }
    }
}
