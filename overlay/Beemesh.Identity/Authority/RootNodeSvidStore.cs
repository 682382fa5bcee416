using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Storage;

namespace Beemesh.Identity.Authority;

/// <summary>
/// Keeps the node SVID of the node holding the root (the first node) in <c>STATE/node-svid.pem</c>:
/// the certificate and its PKCS#8 private key in one file (mode 0600), written durably in one piece,
/// so a crash leaves the old pair or the new one. The first node issues its node SVID from its own
/// root; keeping it makes the node present the same certificate across restarts until it renews it.
/// </summary>
public static class RootNodeSvidStore
{
    /// <summary>File name inside the state directory.</summary>
    public const string FileName = "node-svid.pem";

    /// <summary>
    /// The saved node SVID (with its private key) when it is a node SVID of <paramref name="nodeName"/>
    /// signed by <paramref name="authority"/>'s root and valid at <paramref name="now"/>; otherwise null,
    /// with <paramref name="reason"/> saying why it is not reused (null when there is no file).
    /// </summary>
    public static X509Certificate2? Load(string stateDirectory, CertificateAuthority authority, string nodeName, DateTimeOffset now, out string? reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateDirectory);
        ArgumentNullException.ThrowIfNull(authority);
        reason = null;
        string path = Path.Combine(stateDirectory, FileName);
        if (!File.Exists(path))
        {
            return null;
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPemFile(path);
        }
        catch (CryptographicException e)
        {
            reason = $"{path} does not hold a certificate and its key ({e.Message})";
            return null;
        }

        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            reason = $"{path} holds no private key";
            return null;
        }

        string? name = NodeSvidValidator.Validate(certificate, authority.Bundle, authority.TrustDomain, now, out string? error);
        if (name != nodeName)
        {
            certificate.Dispose();
            reason = name is null ? $"{path}: {error}" : $"{path} is the node SVID of {name}, not {nodeName}";
            return null;
        }

        // Round-trip through PKCS#12 so the key is usable by the platform's TLS on every runtime.
        using (certificate)
        {
            return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
        }
    }

    /// <summary>Saves <paramref name="nodeSvid"/> (with its ECDSA private key), replacing the saved one.</summary>
    public static void Save(string stateDirectory, X509Certificate2 nodeSvid)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateDirectory);
        ArgumentNullException.ThrowIfNull(nodeSvid);
        using ECDsa key = nodeSvid.GetECDsaPrivateKey() ?? throw new ArgumentException("the node SVID carries no ECDSA private key", nameof(nodeSvid));
        DurableFile.WriteText(Path.Combine(stateDirectory, FileName), nodeSvid.ExportCertificatePem() + "\n" + key.ExportPkcs8PrivateKeyPem() + "\n");
    }
}
