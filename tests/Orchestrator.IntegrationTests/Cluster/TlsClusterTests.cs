using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Abstractions;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.TestKit;
using Orchestrator.Worker;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Orchestrator.IntegrationTests.Cluster;

/// <summary>
/// The cluster's certificate options: every bad input is refused before anything starts, with the reason. No cluster needed.
/// </summary>
public sealed class ClusterTlsOptionsTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-tls-options-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string File(string name) => Path.Combine(_dir.FullName, name);

    [Fact]
    public void A_certificate_with_its_password_from_a_file_or_the_environment_is_loaded_and_accepts_only_itself()
    {
        var certificate = TestCertificates.Create("orchestrator-cluster");
        var path = TestCertificates.Write(certificate, File("cluster.pfx"), "s3cret pass");
        var fromFile = ClusterTls.Resolve(path, TestCertificates.WritePassword(File("password"), "s3cret pass"), password: "ignored: the file wins");
        var fromEnvironment = ClusterTls.Resolve(path, passwordFile: null, password: "s3cret pass");

        Assert.NotNull(fromFile);
        Assert.NotNull(fromEnvironment);
        Assert.Equal(certificate.Thumbprint, fromFile.Certificate.Thumbprint);
        Assert.True(fromFile.Certificate.HasPrivateKey);
        Assert.True(fromFile.Accepts(X509Public(certificate)));
        Assert.False(fromFile.Accepts(X509Public(TestCertificates.Create("orchestrator-cluster"))));  // same name, another key
        Assert.False(fromFile.Accepts(null));
        Assert.Null(ClusterTls.Resolve(null, null, "a password alone turns nothing on"));
    }

    [Fact]
    public void Bad_certificate_options_are_refused_naming_the_problem()
    {
        var good = TestCertificates.Write(TestCertificates.Create("c"), File("good.pfx"), "right");

        string Refused(string? certificate, string? passwordFile, string? password) =>
            Assert.Throws<ArgumentException>(() => ClusterTls.Resolve(certificate, passwordFile, password)).Message;

        Assert.Contains("does not exist", Refused(File("missing.pfx"), null, "right"));
        Assert.Contains("wrong password", Refused(good, null, "wrong"));
        Assert.Contains("wrong password", Refused(good, TestCertificates.WritePassword(File("wrong"), "wrong"), null));
        Assert.Contains("needs its password", Refused(good, null, null));
        Assert.Contains("password file", Refused(good, File("no-such-password-file"), null));
        Assert.Contains("needs --tls-cert", Refused(null, File("password"), null));

        System.IO.File.WriteAllText(File("text.pfx"), "not a certificate");
        Assert.Contains("not a PKCS#12", Refused(File("text.pfx"), null, "right"));

        var keyless = TestCertificates.Write(TestCertificates.Create("c"), File("keyless.pfx"), "right", withKey: false);
        Assert.Contains("no private key", Refused(keyless, null, "right"));

        var expired = TestCertificates.Write(
            TestCertificates.Create("c", DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddDays(-1)), File("expired.pfx"), "right");
        Assert.Contains("is valid from", Refused(expired, null, "right"));

        var serverOnly = TestCertificates.Write(TestCertificates.Create("c", clientAuthentication: false), File("server.pfx"), "right");
        Assert.Contains("clientAuth", Refused(serverOnly, null, "right"));
    }

    private static System.Security.Cryptography.X509Certificates.X509Certificate2 X509Public(
        System.Security.Cryptography.X509Certificates.X509Certificate2 certificate) =>
        System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(certificate.RawData);
}

/// <summary>
/// A cluster of real silo processes with mutual TLS: a coordinator and a worker started with <c>--tls-cert</c> run a sweep
/// (the worker's lease calls go silo to silo over TLS), the CLI with the certificate reads it, and a client without the
/// certificate, or with another one, cannot talk to the cluster at all.
/// </summary>
[Collection(PostgresServer.CollectionName)]
public sealed class TlsClusterTests(PostgresServer postgres, ITestOutputHelper output) : IDisposable
{
    private const string Password = "cluster pfx password";
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-tls-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string File(string name) => Path.Combine(_dir.FullName, name);

    private static SweepPlan Plan() => SweepPlanner.PlanText("""
        name: tls
        dataset:
          kind: synthetic-e2e
          options: {mrs: 40, seed: 5}
          eval_limit: 2
        model:
          preset: test
        methods: [finetune]
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [0, 1]
        training:
          batch_size: 5
          max_steps: 4
          eval_every: 4
        decoding:
          strategy: greedy
          max_new_tokens: 6
          min_new_tokens: 1
        execution:
          max_attempts: 1
        """, OrchestratorVocabulary.Default, Path.GetTempPath());

    [Fact]
    public async Task A_TLS_cluster_runs_a_sweep_and_a_client_without_its_certificate_cannot_talk_to_it()
    {
        var plan = Plan();
        var certificate = TestCertificates.Write(TestCertificates.Create("orchestrator-cluster"), File("cluster.pfx"), Password);
        var passwordFile = TestCertificates.WritePassword(File("cluster.password"), Password);
        var tls = ClusterTls.Resolve(certificate, passwordFile, null)!;
        string[] tlsArgs = ["--tls-cert", certificate, "--tls-cert-password-file", passwordFile];

        await using var cluster = await LocalCluster.CreateAsync(postgres, "tls");
        await cluster.StartSiloAsync("coordinator", "coordinator", tlsArgs);
        await cluster.StartSiloAsync("worker-1", "worker", ["--threads", "1", .. tlsArgs]);
        await cluster.ConnectClientAsync(tls);

        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        var progress = await cluster.WaitForCompletionAsync(plan.SweepId, TimeSpan.FromMinutes(3));
        var cells = await SweepTruth.ReadAsync(cluster, plan.SweepId);
        Assert.Equal(2, progress.Done);
        Assert.All(cells, c => Assert.Equal(("succeeded", 1, "done"), (c.Status, c.Trainings, c.QueueState)));

        // The command line with the certificate reads the sweep through the gateway.
        var connectionFile = File("connection");
        await System.IO.File.WriteAllTextAsync(connectionFile, cluster.ConnectionString);
        var (exit, json, err) = await CliCapture.RunAsync("status", plan.SweepId, "--format", "json", "--cluster-file", connectionFile,
            "--cluster-id", cluster.ClusterId, "--tls-cert", certificate, "--tls-cert-password-file", passwordFile);
        Assert.True(exit == 0, err);
        using (var status = JsonDocument.Parse(json))
        {
            Assert.Equal((2, true), (status.RootElement.GetProperty("done").GetInt32(), status.RootElement.GetProperty("complete").GetBoolean()));
        }

        // The same call as a client that holds the certificate (at once), without it, and with another certificate of the same
        // name: those never get an answer (the silos end every connection whose handshake fails; the client keeps retrying).
        var clock = Stopwatch.StartNew();
        Assert.Null(await RefusalAsync(cluster, tls, plan.SweepId));
        output.WriteLine($"a client with the certificate read the sweep in {clock.Elapsed.TotalSeconds:F1} s");
        var stranger = ClusterTls.Resolve(
            TestCertificates.Write(TestCertificates.Create("orchestrator-cluster"), File("other.pfx"), Password), null, Password)!;
        var refusals = await Task.WhenAll(RefusalAsync(cluster, null, plan.SweepId), RefusalAsync(cluster, stranger, plan.SweepId));
        output.WriteLine($"a client without TLS: {refusals[0]}; with another certificate: {refusals[1]}");
        Assert.True(refusals[0] is not null, "a client without TLS read the sweep");
        Assert.True(refusals[1] is not null, "a client with another certificate read the sweep");

        // A silo with a wrong password never starts: it says why.
        var wrong = TestCertificates.WritePassword(File("wrong.password"), "not it");
        var failed = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            cluster.StartSiloAsync("worker-wrong", "worker", ["--tls-cert", certificate, "--tls-cert-password-file", wrong]));
        Assert.Contains("wrong password", failed.Message);
    }

    /// <summary>Null when a client with <paramref name="tls"/> reads the sweep's progress; else why it could not.</summary>
    private static async Task<string?> RefusalAsync(LocalCluster cluster, ClusterTls? tls, string sweepId)
    {
        using var client = ClusterHost.BuildClient(cluster.ConnectionString, cluster.ClusterId, tls: tls);
        try
        {
            // Far longer than a client with the certificate needs (well under a second on an idle machine).
            var patience = TimeSpan.FromSeconds(20);
            await client.StartAsync().WaitAsync(patience);
            var grains = client.Services.GetRequiredService<IGrainFactory>();
            await grains.GetGrain<ISweepGrain>(sweepId).GetProgressAsync().WaitAsync(patience);
            return null;
        }
        catch (Exception ex) when (ex is not XunitException)
        {
            return $"{ex.GetType().Name}: {ex.GetBaseException().Message}";
        }
    }
}
