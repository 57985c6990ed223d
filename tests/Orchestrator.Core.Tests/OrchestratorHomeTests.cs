using Orchestrator.Core.Paths;

namespace Orchestrator.Core.Tests;

public sealed class OrchestratorHomeTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] values) =>
        name => values.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void The_data_directory_is_the_option_then_the_environment_then_the_nearest_folder_above_then_the_user_default()
    {
        using var dir = new TempFolder();
        var deep = Path.Combine(dir.Path, "project", "a", "b");
        Directory.CreateDirectory(deep);
        var home = Path.Combine(dir.Path, "home");

        // Nothing set, no .orchestrator/ above: the user's default (XDG_DATA_HOME when absolute, else ~/.local/share).
        Assert.Equal(Path.Combine(home, ".local", "share", "orchestrator"), OrchestratorHome.Locate(null, deep, Env(("HOME", home))).Path);
        Assert.Equal(Path.Combine(dir.Path, "xdg", "orchestrator"),
            OrchestratorHome.Locate(null, deep, Env(("HOME", home), ("XDG_DATA_HOME", Path.Combine(dir.Path, "xdg")))).Path);

        // The nearest .orchestrator/ at or above the working directory, from any folder below it.
        var project = Path.Combine(dir.Path, "project", ".orchestrator");
        Directory.CreateDirectory(project);
        var found = OrchestratorHome.Locate(null, deep, Env(("HOME", home)));
        Assert.Equal(project, found.Path);
        Assert.Contains("nearest .orchestrator/", found.Source);
        Assert.Equal(project, OrchestratorHome.Locate(null, Path.Combine(dir.Path, "project"), Env(("HOME", home))).Path);
        var inner = Path.Combine(deep, ".orchestrator");
        Directory.CreateDirectory(inner);
        Assert.Equal(inner, OrchestratorHome.Locate(null, deep, Env(("HOME", home))).Path);

        // The environment wins over the folders (the older ORCHESTRATOR_DATA_DIR after ORCHESTRATOR_HOME), the option over all.
        Assert.Equal(("/srv/legacy", "$ORCHESTRATOR_DATA_DIR"),
            Pair(OrchestratorHome.Locate(null, deep, Env(("ORCHESTRATOR_DATA_DIR", "/srv/legacy")))));
        Assert.Equal(("/srv/orch", "$ORCHESTRATOR_HOME"),
            Pair(OrchestratorHome.Locate(null, deep, Env(("ORCHESTRATOR_HOME", "/srv/orch"), ("ORCHESTRATOR_DATA_DIR", "/srv/legacy")))));
        Assert.Equal((Path.Combine(deep, "mine"), "--data-dir"),
            Pair(OrchestratorHome.Locate("mine", deep, Env(("ORCHESTRATOR_HOME", "/srv/orch")))));
        Assert.Equal(Path.Combine("/srv/orch", "results.db"), OrchestratorHome.Locate(null, deep, Env(("ORCHESTRATOR_HOME", "/srv/orch"))).ResultsDatabase);
    }

    [Fact]
    public void Datasets_go_to_their_own_variable_or_datasets_under_the_data_directory()
    {
        using var dir = new TempFolder();
        Assert.Equal("/srv/data", OrchestratorHome.DatasetsDirectory(null, dir.Path, Env(("ORCHESTRATOR_DATASETS", "/srv/data"), ("ORCHESTRATOR_HOME", "/srv/orch"))).Path);
        Assert.Equal(Path.Combine("/srv/orch", "datasets"), OrchestratorHome.DatasetsDirectory(null, dir.Path, Env(("ORCHESTRATOR_HOME", "/srv/orch"))).Path);
        Assert.Equal(Path.Combine(dir.Path, "d"), OrchestratorHome.DatasetsDirectory("d", dir.Path, Env(("ORCHESTRATOR_DATASETS", "/srv/data"))).Path);

        // Per user, not per project: a checkout's .orchestrator/ (the local cluster makes one) does not move them.
        Directory.CreateDirectory(Path.Combine(dir.Path, ".orchestrator"));
        Assert.Equal(Path.Combine(dir.Path, "home", ".local", "share", "orchestrator", "datasets"),
            OrchestratorHome.DatasetsDirectory(null, dir.Path, Env(("HOME", Path.Combine(dir.Path, "home")))).Path);
    }

    private static (string, string) Pair(HomeLocation home) => (home.Path, home.Source);
}
