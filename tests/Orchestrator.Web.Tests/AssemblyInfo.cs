// One embedded sweep and one browser serve every test; the sweeps train on both cores: no parallel test classes.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
