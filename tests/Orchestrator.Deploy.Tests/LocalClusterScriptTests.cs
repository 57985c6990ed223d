using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Orchestrator.Deploy.Tests;

/// <summary>
/// deploy/local/cluster.sh for real: PostgreSQL asks every client for a password, the connection strings are in 0600
/// files passed by path (never in a process's arguments), the socket folder is the PostgreSQL user's alone, fsync is
/// on, and a silo and the CLI started from those files work, over mutual TLS with the certificate <c>--tls</c> made (its
/// password in a 0600 file too). One coordinator and no workers, to keep it short.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed partial class LocalClusterScriptTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("orch-local-cluster-").FullName;
    private readonly string _script = Repo.Current.Path(DocAndScriptChecks.LocalCluster);

    public void Dispose()
    {
        Run("bash", [_script, "stop"], Environment(), TimeSpan.FromMinutes(2));
        Directory.Delete(_state, recursive: true);
    }

    private Dictionary<string, string?> Environment()
    {
        var configuration = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
        var built = File.Exists(Repo.Current.Path($"src/Orchestrator.Silo/bin/{configuration}/net10.0/linux-x64/Orchestrator.Silo.dll"))
                    && File.Exists(Repo.Current.Path($"src/Orchestrator.Cli/bin/{configuration}/net10.0/linux-x64/orchestrator.dll"));
        return new()
        {
            ["ORCHESTRATOR_LOCAL_DIR"] = _state,
            ["ORCHESTRATOR_CONFIGURATION"] = configuration,
            ["ORCHESTRATOR_SKIP_BUILD"] = built ? "1" : "0",
            ["ORCHESTRATOR_CLUSTER"] = null,
            ["ORCHESTRATOR_CLUSTER_FILE"] = null,
            ["ORCHESTRATOR_DASHBOARD_PORT"] = null,
            ["ORCHESTRATOR_TLS_CERT"] = null,
            ["ORCHESTRATOR_TLS_CERT_PASSWORD"] = null,
            ["ORCHESTRATOR_TLS_CERT_PASSWORD_FILE"] = null,
            ["PGPASSWORD"] = null,
            ["PGPASSFILE"] = "/dev/null",
        };
    }

    [Fact]
    public void Start_uses_passwords_from_0600_files_a_private_socket_folder_and_fsync_and_the_silo_and_CLI_work_from_those_files_over_TLS()
    {
        var env = Environment();
        var start = Run("bash", [_script, "start", "0", "--tls"], env, TimeSpan.FromMinutes(6));
        Assert.True(start.Exit == 0, start.Output);
        Assert.Contains($"export ORCHESTRATOR_CLUSTER_FILE=\"{_state}/connection\"", start.Output, StringComparison.Ordinal);
        var certificate = Path.Combine(_state, "secrets", "cluster.pfx");
        var tlsPassword = Path.Combine(_state, "secrets", "tls.password");
        Assert.Contains($"export ORCHESTRATOR_TLS_CERT=\"{certificate}\" ORCHESTRATOR_TLS_CERT_PASSWORD_FILE=\"{tlsPassword}\"", start.Output, StringComparison.Ordinal);
        Assert.Equal(Mode("600"), File.GetUnixFileMode(certificate));
        Assert.Equal(Mode("600"), File.GetUnixFileMode(tlsPassword));
        Assert.False(File.Exists(Path.Combine(_state, "secrets", "cluster.key")), "the unwrapped key was left behind");
        Assert.DoesNotContain("Password=", start.Output, StringComparison.Ordinal);

        // Files and folders: secrets 0600 in a 0700 folder, the socket folder not writable (or enterable) by others.
        var connectionFile = Path.Combine(_state, "connection");
        Assert.Equal(Mode("600"), File.GetUnixFileMode(connectionFile));
        Assert.Equal(Mode("600"), File.GetUnixFileMode(Path.Combine(_state, "secrets", "owner-connection")));
        Assert.Equal(Mode("700"), File.GetUnixFileMode(Path.Combine(_state, "secrets")));
        Assert.Equal(Mode("700"), File.GetUnixFileMode(Path.Combine(_state, "pgsocket")));
        Assert.False(File.GetUnixFileMode(_state).HasFlag(UnixFileMode.OtherWrite));
        Assert.Contains(Directory.GetFileSystemEntries(Path.Combine(_state, "pgsocket")), f => f.EndsWith(".s.PGSQL." + Port(connectionFile), StringComparison.Ordinal));

        var connection = File.ReadAllText(connectionFile).Trim();
        Assert.Contains("Username=orchestrator_runtime", connection, StringComparison.Ordinal);
        var password = PasswordOf(connection);
        Assert.True(password.Length >= 24, "a generated password");
        var psql = Path.Combine(File.ReadAllText(Path.Combine(_state, "pg_bindir")).Trim(), "psql");
        var port = Port(connectionFile);

        // No password: refused over TCP and over the unix socket, for the runtime role and for the owner.
        foreach (var (host, user) in new[] { ("127.0.0.1", "orchestrator_runtime"), ("127.0.0.1", "postgres"), (Path.Combine(_state, "pgsocket"), "postgres") })
        {
            var denied = Run(psql, ["-w", "-h", host, "-p", port, "-U", user, "-d", "orchestrator", "-c", "SELECT 1"], env, TimeSpan.FromSeconds(30));
            Assert.NotEqual(0, denied.Exit);
            Assert.Contains("password", denied.Output, StringComparison.OrdinalIgnoreCase);
        }

        // With the password from the file: in, as the runtime role, with fsync on; the schema bookkeeping is not its to change.
        var withPassword = new Dictionary<string, string?>(env) { ["PGPASSWORD"] = password };
        var ok = Run(psql, ["-w", "-At", "-h", "127.0.0.1", "-p", port, "-U", "orchestrator_runtime", "-d", "orchestrator",
            "-c", "SELECT current_user || ' ' || current_setting('fsync') || ' ' || (SELECT count(*) FROM orleansquery)"], withPassword, TimeSpan.FromSeconds(30));
        Assert.True(ok.Exit == 0, ok.Output);
        Assert.Matches(@"^orchestrator_runtime on [1-9]\d*$", ok.Output.Trim());
        var tamper = Run(psql, ["-w", "-h", "127.0.0.1", "-p", port, "-U", "orchestrator_runtime", "-d", "orchestrator",
            "-c", "UPDATE orleansquery SET querytext = querytext"], withPassword, TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, tamper.Exit);
        Assert.Contains("permission denied", tamper.Output, StringComparison.Ordinal);

        // The coordinator was started from the file: ready, and its arguments hold no password.
        var coordinator = int.Parse(File.ReadAllText(Path.Combine(_state, "pids", "coordinator")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var cmdline = File.ReadAllText($"/proc/{coordinator}/cmdline").Replace('\0', ' ');
        Assert.Contains("--cluster-file", cmdline, StringComparison.Ordinal);
        Assert.DoesNotContain(password, cmdline, StringComparison.Ordinal);
        Assert.DoesNotContain("Password=", cmdline, StringComparison.OrdinalIgnoreCase);   // no connection string ("--tls-cert-password-file" is a path)
        Assert.Contains($"--tls-cert {certificate}", cmdline, StringComparison.Ordinal);
        Assert.DoesNotContain(File.ReadAllText(tlsPassword).Trim(), cmdline, StringComparison.Ordinal);

        // The CLI from ORCHESTRATOR_CLUSTER_FILE and the TLS variables: submits a sweep through the coordinator's gateway, which
        // speaks TLS only (no worker trains it).
        var spec = Path.Combine(_state, "tiny.yaml");
        File.WriteAllText(spec, "name: tiny\ndataset: {kind: synthetic-e2e}\nmodel: {preset: tiny}\nmethods: [lora]\ngrid: {sizes: [10], subsamples: 1, seeds: [0]}\n");
        var cli = Repo.Current.Path($"src/Orchestrator.Cli/bin/{env["ORCHESTRATOR_CONFIGURATION"]}/net10.0/linux-x64/orchestrator.dll");
        var cliEnv = new Dictionary<string, string?>(env)
        {
            ["ORCHESTRATOR_CLUSTER_FILE"] = connectionFile,
            ["ORCHESTRATOR_TLS_CERT"] = certificate,
            ["ORCHESTRATOR_TLS_CERT_PASSWORD_FILE"] = tlsPassword,
        };
        var submit = Run("dotnet", [cli, "submit", spec], cliEnv, TimeSpan.FromMinutes(2));
        Assert.True(submit.Exit == 0, submit.Output);
        Assert.Contains("1 cells: 0 already done, 1 queued", submit.Output, StringComparison.Ordinal);
    }

    private static UnixFileMode Mode(string octal) => (UnixFileMode)Convert.ToInt32(octal, 8);

    private static string PasswordOf(string connection) => PasswordPart().Match(connection).Groups[1].Value;

    private static string Port(string connectionFile) => PortPart().Match(File.ReadAllText(connectionFile)).Groups[1].Value;

    /// <summary>
    /// A checkout under a folder only root may enter (a <c>mktemp -d</c> folder, /root): as root, PostgreSQL's own user
    /// could not reach the default state folder, so the script keeps its state under /var/tmp, named by the checkout's
    /// path (status and stop find it again); as another user, or with ORCHESTRATOR_LOCAL_DIR, the folder is the one asked for.
    /// </summary>
    [Fact]
    public void A_checkout_under_a_private_folder_keeps_its_state_where_the_postgres_user_can_reach_it()
    {
        var privateRoot = Directory.CreateTempSubdirectory("orch-private-checkout-"); // 0700, as mktemp -d makes it
        try
        {
            string checkout = Path.Combine(privateRoot.FullName, "p");
            Directory.CreateDirectory(Path.Combine(checkout, "deploy", "local"));
            string script = Path.Combine(checkout, "deploy", "local", "cluster.sh");
            File.Copy(_script, script);
            var env = Environment();
            env["ORCHESTRATOR_LOCAL_DIR"] = null;
            var status = Run("bash", [script, "status"], env, TimeSpan.FromMinutes(1));
            Assert.True(status.Exit == 0, status.Output);

            bool root = System.Environment.UserName == "root" || Run("id", ["-u"], new Dictionary<string, string?>(), TimeSpan.FromSeconds(10)).Output.Trim() == "0";
            bool postgresUser = Run("id", ["postgres"], new Dictionary<string, string?>(), TimeSpan.FromSeconds(10)).Exit == 0;
            string expected = root && postgresUser
                ? "/var/tmp/orchestrator-local-cluster-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(checkout)))[..12]
                : Path.Combine(checkout, ".orchestrator", "local-cluster");
            Assert.Equal($"no local cluster recorded in {expected}", status.Output.Trim());

            env["ORCHESTRATOR_LOCAL_DIR"] = _state;
            Assert.Equal($"no local cluster recorded in {_state}", Run("bash", [script, "status"], env, TimeSpan.FromMinutes(1)).Output.Trim());
        }
        finally
        {
            privateRoot.Delete(recursive: true);
        }
    }

    private static (int Exit, string Output) Run(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string?> env, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env)
        {
            if (v is null)
            {
                info.Environment.Remove(k);
            }
            else
            {
                info.Environment[k] = v;
            }
        }

        using var process = Process.Start(info)!;
        var output = new StringBuilder();
        // Read with our own tasks: the silos started by the script inherit the pipes and outlive it.
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }

        foreach (var read in new[] { stdout, stderr })
        {
            if (read.Wait(TimeSpan.FromSeconds(2)))
            {
                output.Append(read.Result);
            }
        }

        return (process.HasExited ? process.ExitCode : -1, output.ToString());
    }

    [GeneratedRegex("Password=([^;]+)")]
    private static partial Regex PasswordPart();

    [GeneratedRegex("Port=(\\d+)")]
    private static partial Regex PortPart();
}
