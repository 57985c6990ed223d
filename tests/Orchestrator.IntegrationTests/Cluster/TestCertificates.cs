using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Orchestrator.IntegrationTests.Cluster;

/// <summary>Self-signed certificates made in the test, written as PKCS#12 files as an operator would make them with openssl.</summary>
internal static class TestCertificates
{
    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";

    /// <summary>A certificate with its private key (ECDSA P-256) for <paramref name="subject"/>.</summary>
    public static X509Certificate2 Create(string subject, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null,
        bool serverAuthentication = true, bool clientAuthentication = true)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={subject}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        var usages = new OidCollection();
        if (serverAuthentication)
        {
            usages.Add(new Oid(ServerAuthentication));
        }

        if (clientAuthentication)
        {
            usages.Add(new Oid(ClientAuthentication));
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, critical: false));
        return request.CreateSelfSigned(notBefore ?? DateTimeOffset.UtcNow.AddDays(-1), notAfter ?? DateTimeOffset.UtcNow.AddDays(30));
    }

    /// <summary>Writes <paramref name="certificate"/> (with its key unless <paramref name="withKey"/> is false) to <paramref name="path"/>.</summary>
    public static string Write(X509Certificate2 certificate, string path, string? password, bool withKey = true)
    {
        var exported = withKey
            ? certificate.Export(X509ContentType.Pkcs12, password)
            : X509CertificateLoader.LoadCertificate(certificate.RawData).Export(X509ContentType.Pkcs12, password);
        File.WriteAllBytes(path, exported);
        return path;
    }

    /// <summary>A 0600 file holding <paramref name="password"/> and a newline, as <c>openssl rand</c> into a file would leave it.</summary>
    public static string WritePassword(string path, string password)
    {
        File.WriteAllText(path, password + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        return path;
    }
}
