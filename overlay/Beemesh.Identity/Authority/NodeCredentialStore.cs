using Beemesh.Identity.Storage;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Join;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;

namespace Beemesh.Identity.Authority;

/// <summary>
/// Keeps a joined node's <see cref="NodeCredentials"/> in <c>STATE/node/</c>: <c>root.crt</c>,
/// <c>node-ca.crt</c>, <c>node-ca.key</c> (0600), <c>node.crt</c> and <c>node.key</c> (0600), all PEM.
/// The directory is written whole under a temporary name, synced, then renamed into place (and the
/// state directory synced), so a crash leaves either no credentials or complete ones. A state
/// directory with these files is a joined node's: <see cref="CertificateAuthority.LoadOrCreate"/>
/// then signs with the node CA and never creates a root. Renewed credentials
/// (<see cref="Replace"/>) are written whole as <c>STATE/node.next/</c> first, then swapped in; a
/// start that finds <c>node.next/</c> (a crash during the swap) finishes the swap, so the node keeps
/// either its old or its new credentials, never a mix.
/// </summary>
public static class NodeCredentialStore
{
    /// <summary>Name of the directory under the state directory.</summary>
    public const string DirectoryName = "node";

    private const string NextDirectoryName = "node.next";
    private const string RootFile = "root.crt";
    private const string NodeCaFile = "node-ca.crt";
    private const string NodeCaKeyFile = "node-ca.key";
    private const string NodeSvidFile = "node.crt";
    private const string NodeSvidKeyFile = "node.key";

    private const UnixFileMode PrivateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode PublicFileMode = PrivateFileMode | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const UnixFileMode PrivateDirectoryMode = PrivateFileMode | UnixFileMode.UserExecute;

    /// <summary>True when <paramref name="stateDirectory"/> holds saved node credentials.</summary>
    public static bool Exists(string stateDirectory) =>
        File.Exists(Path.Combine(stateDirectory, DirectoryName, NodeCaFile))
        || File.Exists(Path.Combine(stateDirectory, NextDirectoryName, NodeCaFile));

    /// <summary>Saves <paramref name="credentials"/>; throws <see cref="IOException"/> when credentials are already saved.</summary>
    public static void Save(string stateDirectory, NodeCredentials credentials)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateDirectory);
        ArgumentNullException.ThrowIfNull(credentials);
        Directory.CreateDirectory(stateDirectory, PrivateDirectoryMode);
        string target = Path.Combine(stateDirectory, DirectoryName);
        if (Directory.Exists(target))
        {
            throw new IOException($"{target} already exists; this state directory belongs to a joined node.");
        }

        WriteWhole(stateDirectory, credentials, target);
    }

    /// <summary>
    /// Replaces the saved credentials with renewed ones of the same node and trust domain: written whole
    /// as <c>node.next/</c>, then swapped in (see the type's summary). Throws
    /// <see cref="InvalidOperationException"/> when nothing is saved yet or the renewed credentials
    /// belong to another node or trust domain.
    /// </summary>
    public static void Replace(string stateDirectory, NodeCredentials credentials)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateDirectory);
        ArgumentNullException.ThrowIfNull(credentials);
        using (NodeCredentials current = Load(stateDirectory) ?? throw new InvalidOperationException($"{stateDirectory} holds no node credentials to replace"))
        {
            if (current.NodeName != credentials.NodeName || current.TrustDomain != credentials.TrustDomain)
            {
                throw new InvalidOperationException(
                    $"renewed credentials are node {credentials.NodeName} of {credentials.TrustDomain}, the saved ones node {current.NodeName} of {current.TrustDomain}");
            }
        }

        WriteWhole(stateDirectory, credentials, Path.Combine(stateDirectory, NextDirectoryName));
        FinishReplace(stateDirectory);
    }

    // Writes the five files under a temporary name, syncs them and renames the directory to target.
    private static void WriteWhole(string stateDirectory, NodeCredentials credentials, string target)
    {
        string temp = Path.Combine(stateDirectory, DirectoryName + ".tmp-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(4)));
        Directory.CreateDirectory(temp, PrivateDirectoryMode);
        try
        {
            DurableFile.WriteText(Path.Combine(temp, RootFile), credentials.Root.ExportCertificatePem(), PublicFileMode);
            DurableFile.WriteText(Path.Combine(temp, NodeCaFile), credentials.NodeCa.ExportCertificatePem(), PublicFileMode);
            DurableFile.WriteText(Path.Combine(temp, NodeCaKeyFile), PrivateKeyPem(credentials.NodeCa), PrivateFileMode);
            DurableFile.WriteText(Path.Combine(temp, NodeSvidFile), credentials.NodeSvid.ExportCertificatePem(), PublicFileMode);
            DurableFile.WriteText(Path.Combine(temp, NodeSvidKeyFile), PrivateKeyPem(credentials.NodeSvid), PrivateFileMode);
            DurableFile.SyncDirectory(temp);
            Directory.Move(temp, target);
            DurableFile.SyncDirectory(stateDirectory);
        }
        catch
        {
            if (Directory.Exists(temp))
            {
                Directory.Delete(temp, recursive: true);
            }

            throw;
        }
    }

    // node.next/ is complete once it exists under that name: it replaces node/ (moved aside, then removed).
    private static void FinishReplace(string stateDirectory)
    {
        string next = Path.Combine(stateDirectory, NextDirectoryName);
        if (!Directory.Exists(next))
        {
            return;
        }

        string target = Path.Combine(stateDirectory, DirectoryName);
        string previous = Path.Combine(stateDirectory, DirectoryName + ".prev-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(4)));
        if (Directory.Exists(target))
        {
            Directory.Move(target, previous);
        }

        Directory.Move(next, target);
        DurableFile.SyncDirectory(stateDirectory);
        if (Directory.Exists(previous))
        {
            Directory.Delete(previous, recursive: true);
        }
    }

    /// <summary>
    /// Loads saved credentials, or null when there are none. Throws <see cref="InvalidOperationException"/>
    /// when they are inconsistent: a key that does not match its certificate, a node CA or node SVID not
    /// signed by the saved root, or a node SVID that is not <c>spiffe://TD/node/N</c>.
    /// </summary>
    public static NodeCredentials? Load(string stateDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateDirectory);
        if (!Exists(stateDirectory))
        {
            return null;
        }

        FinishReplace(stateDirectory);
        string dir = Path.Combine(stateDirectory, DirectoryName);
        X509Certificate2 root = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(dir, RootFile));
        X509Certificate2 nodeCa = X509Certificate2.CreateFromPemFile(Path.Combine(dir, NodeCaFile), Path.Combine(dir, NodeCaKeyFile));
        X509Certificate2 nodeSvid = X509Certificate2.CreateFromPemFile(Path.Combine(dir, NodeSvidFile), Path.Combine(dir, NodeSvidKeyFile));
        try
        {
            return Verify(root, nodeCa, nodeSvid, dir);
        }
        catch
        {
            root.Dispose();
            nodeCa.Dispose();
            nodeSvid.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Checks that <paramref name="nodeCa"/> and <paramref name="nodeSvid"/> were issued by
    /// <paramref name="root"/> as node certificates for one node (validity periods aside) and wraps them.
    /// </summary>
    internal static NodeCredentials Verify(X509Certificate2 root, X509Certificate2 nodeCa, X509Certificate2 nodeSvid, string source)
    {
        if (SvidValidator.TryGetSpiffeId(root, out SpiffeId? rootId) != SvidValidationResult.Valid || rootId!.Path.Length != 0)
        {
            throw new InvalidOperationException($"{source}: the root carries no trust domain ID.");
        }

        if (SvidValidator.TryGetSpiffeId(nodeSvid, out SpiffeId? nodeId) != SvidValidationResult.Valid
            || nodeId!.TrustDomain != rootId.TrustDomain
            || NodeNames.FromSpiffeId(nodeId) is not string nodeName)
        {
            throw new InvalidOperationException($"{source}: the node SVID is not spiffe://{rootId.TrustDomain}/node/NAME.");
        }

        if (SvidValidator.TryGetSpiffeId(nodeCa, out SpiffeId? caId) != SvidValidationResult.Valid || caId != nodeId)
        {
            throw new InvalidOperationException($"{source}: the node CA does not belong to node '{nodeName}'.");
        }

        if (!IssuedBy(nodeCa, root) || !IssuedBy(nodeSvid, root))
        {
            throw new InvalidOperationException($"{source}: the node certificates are not signed by the saved root.");
        }

        return new NodeCredentials(nodeName, rootId.TrustDomain, root, nodeCa, nodeSvid);
    }

    internal static bool IssuedBy(X509Certificate2 certificate, X509Certificate2 root)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        // Expiry is the CA's business when it issues; loading must still work so the operator gets that message.
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid;
        bool built = chain.Build(certificate) && chain.ChainElements.Count == 2;
        foreach (X509ChainElement element in chain.ChainElements)
        {
            element.Certificate.Dispose();
        }

        return built;
    }

    private static string PrivateKeyPem(X509Certificate2 certificate)
    {
        using ECDsa key = certificate.GetECDsaPrivateKey()
            ?? throw new InvalidOperationException("A node certificate carries no ECDSA private key.");
        return key.ExportPkcs8PrivateKeyPem();
    }
}
