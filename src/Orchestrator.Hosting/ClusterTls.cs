using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Orleans.Connections.Security;

namespace Orchestrator.Hosting;

/// <summary>
/// Mutual TLS on the Orleans ports (silo to silo, client to gateway). Every process of a cluster is given the same
/// certificate with its private key (a PKCS#12 file, <c>--tls-cert</c>), presents it on every connection and accepts a
/// peer only when the peer presents that very certificate, byte for byte. The rule needs no certificate authority and
/// no host names (silos are reached by IP address), and holding the cluster's private key is what admits a process, as
/// holding the database password admits it to PostgreSQL. Chain and name checks are left out on purpose: a pinned
/// certificate is a stronger check than either; its validity dates still apply.
/// </summary>
public sealed class ClusterTls
{
    /// <summary>The certificate file when no <c>--tls-cert</c> is given (the CLI; silos read it as <c>TLS_CERT</c> too).</summary>
    public const string CertificateVariable = "ORCHESTRATOR_TLS_CERT";

    /// <summary>The certificate's password. Never a command-line switch: arguments are visible to every user of the machine.</summary>
    public const string PasswordVariable = "ORCHESTRATOR_TLS_CERT_PASSWORD";

    /// <summary>A file holding the certificate's password (first line), when no <c>--tls-cert-password-file</c> is given.</summary>
    public const string PasswordFileVariable = "ORCHESTRATOR_TLS_CERT_PASSWORD_FILE";

    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";

    private readonly TimeProvider _clock;

    private ClusterTls(X509Certificate2 certificate, string path, TimeProvider clock)
    {
        Certificate = certificate;
        Path = path;
        _clock = clock;
    }

    /// <summary>The cluster's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The file it was read from (for messages).</summary>
    public string Path { get; }

    /// <summary>
    /// The cluster's TLS settings from <paramref name="certificate"/> (<c>--tls-cert</c> or <see cref="CertificateVariable"/>)
    /// and its password, read from <paramref name="passwordFile"/> (<c>--tls-cert-password-file</c> or
    /// <see cref="PasswordFileVariable"/>) or else taken from <paramref name="password"/> (<see cref="PasswordVariable"/>);
    /// null when no certificate is given (plain TCP). Throws <see cref="ArgumentException"/> naming the problem: a missing or
    /// unreadable file, a wrong password, a certificate without its private key, outside its validity dates, or not usable
    /// for both ends of a connection.
    /// </summary>
    public static ClusterTls? Resolve(string? certificate, string? passwordFile, string? password, TimeProvider? clock = null)
    {
        if (string.IsNullOrWhiteSpace(certificate))
        {
            return string.IsNullOrWhiteSpace(passwordFile)
                ? null
                : throw new ArgumentException("--tls-cert-password-file needs --tls-cert (the cluster's PKCS#12 certificate file)");
        }

        var secret = string.IsNullOrWhiteSpace(passwordFile) ? password : ReadPassword(passwordFile);
        return Load(certificate.Trim(), secret, clock ?? TimeProvider.System);
    }

    private static ClusterTls Load(string path, string? password, TimeProvider clock)
    {
        if (!File.Exists(path))
        {
            throw new ArgumentException($"the TLS certificate {path} (--tls-cert) does not exist");
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadPkcs12FromFile(path, password);
        }
        catch (CryptographicException ex)
        {
            throw new ArgumentException(string.IsNullOrEmpty(password)
                ? $"cannot open the TLS certificate {path}: it is not a PKCS#12 (.pfx) file, or it needs its password " +
                  $"(--tls-cert-password-file FILE or {PasswordVariable}) ({ex.Message})"
                : $"cannot open the TLS certificate {path} with the password given: a wrong password, or not a PKCS#12 (.pfx) file ({ex.Message})", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"cannot read the TLS certificate {path}: {ex.Message}", ex);
        }

        if (!certificate.HasPrivateKey)
        {
            throw new ArgumentException($"the TLS certificate {path} holds no private key: export the certificate together with its key " +
                                        "(openssl pkcs12 -export -inkey KEY -in CERT -out FILE.pfx)");
        }

        var now = clock.GetUtcNow();
        if (now < certificate.NotBefore.ToUniversalTime() || now > certificate.NotAfter.ToUniversalTime())
        {
            throw new ArgumentException($"the TLS certificate {path} is valid from {certificate.NotBefore.ToUniversalTime():u} " +
                                        $"to {certificate.NotAfter.ToUniversalTime():u} only");
        }

        // Each process is both a server (its ports) and a client (calls to other silos, the CLI to its gateway).
        if (certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault() is { } usage)
        {
            var usages = usage.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value).ToHashSet(StringComparer.Ordinal);
            if (!usages.Contains(ServerAuthentication) || !usages.Contains(ClientAuthentication))
            {
                throw new ArgumentException($"the TLS certificate {path} limits its use (extended key usage) without allowing both " +
                                            "server and client authentication (serverAuth, clientAuth): every process of the cluster is both");
            }
        }

        return new ClusterTls(certificate, path, clock);
    }

    private static string ReadPassword(string path)
    {
        try
        {
            var text = File.ReadAllText(path);
            return text.Split('\n')[0].TrimEnd('\r');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"cannot read the TLS certificate's password file {path} (--tls-cert-password-file): {ex.Message}", ex);
        }
    }

    /// <summary>Whether a peer may talk to this process: it presented the cluster's own certificate, within its validity dates.</summary>
    public bool Accepts(X509Certificate2? peer)
    {
        if (peer is null || !peer.RawDataMemory.Span.SequenceEqual(Certificate.RawDataMemory.Span))
        {
            return false;
        }

        var now = _clock.GetUtcNow();
        return now >= peer.NotBefore.ToUniversalTime() && now <= peer.NotAfter.ToUniversalTime();
    }

    /// <summary>Both ends of every connection present the certificate and require the peer's; <see cref="Accepts"/> decides.</summary>
    internal void Configure(TlsOptions options)
    {
        options.LocalCertificate = Certificate;
        options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;

        // The platform's verdict (an unknown issuer, a name that is not the address dialled) is expected for a self-signed
        // cluster certificate and ignored: the pin below decides alone.
        options.RemoteCertificateValidation = (peer, _, _) => Accepts(peer);
    }
}
