global using Xunit;
global using Xunit.Abstractions;

// Torch tests share process-wide native state (thread pool, global RNG) and two cores; run them one after another.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
