using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Orchestrator.Evaluation.Tests")]
