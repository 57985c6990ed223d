using Orchestrator.IntegrationTests.Cluster;

namespace Orchestrator.IntegrationTests;

/// <summary>Two embedded processes never share a data directory: the second is refused and told which process holds it.</summary>
public sealed class DataDirectoryLockTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("datadir-lock-");

    public void Dispose() => _dir.Delete(recursive: true);

    private SiloProcess Embedded(string name) =>
        new(name, LocalCluster.SiloDll(), ["--role", "all", "--data-dir", _dir.FullName]);

    [Fact]
    public async Task A_second_embedded_process_on_the_same_data_directory_is_refused_naming_the_first_and_a_killed_holder_frees_it()
    {
        using var first = Embedded("first");
        await first.Ready.WaitAsync(TimeSpan.FromMinutes(2));

        using (var second = Embedded("second"))
        {
            Assert.True(second.Process.WaitForExit(120_000), "the second process should exit, not start");
            Assert.Equal(2, second.Process.ExitCode);
            Assert.Contains($"is in use by another orchestrator process (pid {first.Process.Id}", second.Log, StringComparison.Ordinal);
            Assert.DoesNotContain("Silo ready", second.Log, StringComparison.Ordinal);
        }

        // SIGKILL leaves no chance to clean up; the kernel releases the lock with the process.
        first.Kill();
        using var third = Embedded("third");
        await third.Ready.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Contains($"pid {third.Process.Id}", await File.ReadAllTextAsync(Path.Combine(_dir.FullName, "embedded.owner")), StringComparison.Ordinal);
    }
}
