using System.Net;
using System.Net.Sockets;

namespace Orchestrator.Web;

/// <summary>
/// Where the results page listens and who may read it. It binds to 127.0.0.1 unless <see cref="BindAddress"/> says otherwise;
/// bound to any other address it requires a bearer token (<see cref="TokenEnvironmentVariable"/> or <see cref="TokenFile"/>)
/// and refuses to start without one.
/// </summary>
public sealed class WebUiOptions
{
    /// <summary>The environment variable holding the bearer token.</summary>
    public const string TokenEnvironmentVariable = "ORCHESTRATOR_UI_TOKEN";

    /// <summary>The port (0: any free port; <see cref="WebUi.Urls"/> says which).</summary>
    public int Port { get; set; }

    /// <summary>The address to listen on: 127.0.0.1 by default; 0.0.0.0 or another address needs a token.</summary>
    public string BindAddress { get; set; } = "127.0.0.1";

    /// <summary>A file whose first line is the bearer token (else <see cref="TokenEnvironmentVariable"/>).</summary>
    public string? TokenFile { get; set; }

    /// <summary>The token itself (tests; takes precedence over the file and the environment).</summary>
    public string? Token { get; set; }

    /// <summary>True when only this machine can connect (a loopback address).</summary>
    public bool IsLoopback => IPAddress.TryParse(BindAddress, out var address) ? IPAddress.IsLoopback(address) : BindAddress == "localhost";

    /// <summary>The token required of every API request; null when none is (loopback without a token).</summary>
    /// <exception cref="ArgumentException">Bad port or address, an unreadable or empty token file, or no token for a non-loopback address.</exception>
    public string? ResolveToken()
    {
        if (Port is < 0 or > 65535)
        {
            throw new ArgumentException($"--ui-port must be between 1 and 65535, got {Port}");
        }

        if (BindAddress != "localhost" && !IPAddress.TryParse(BindAddress, out _))
        {
            throw new ArgumentException($"--bind '{BindAddress}' is not an IP address (use 127.0.0.1, 0.0.0.0 or this machine's address)");
        }

        string? token = Token;
        if (token is null && TokenFile is not null)
        {
            try
            {
                token = File.ReadLines(TokenFile).FirstOrDefault()?.Trim();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"--token-file {TokenFile}: cannot read it ({ex.Message})", ex);
            }

            if (string.IsNullOrEmpty(token))
            {
                throw new ArgumentException($"--token-file {TokenFile} is empty: put the bearer token on its first line");
            }
        }

        token ??= Environment.GetEnvironmentVariable(TokenEnvironmentVariable) is { Length: > 0 } env ? env.Trim() : null;
        if (token is null && !IsLoopback)
        {
            throw new ArgumentException(
                $"the results page is bound to {BindAddress}, which other machines can reach: set {TokenEnvironmentVariable} or give --token-file " +
                "with a bearer token (or bind to 127.0.0.1)");
        }

        if (token is { Length: < 16 })
        {
            throw new ArgumentException("the results page's bearer token is too short: use at least 16 characters (e.g. `openssl rand -hex 24`)");
        }

        return token;
    }

    /// <summary>Fails early, naming the port, when it is taken (Kestrel's own error does not name it once unwrapped).</summary>
    internal void CheckPortFree()
    {
        if (Port == 0)
        {
            return;
        }

        try
        {
            using var probe = new TcpListener(BindAddress == "localhost" ? IPAddress.Loopback : IPAddress.Parse(BindAddress), Port);
            probe.Start();
        }
        catch (SocketException ex)
        {
            throw new InvalidOperationException($"--ui-port {Port}: the port is not available on {BindAddress} ({ex.Message})", ex);
        }
    }
}
