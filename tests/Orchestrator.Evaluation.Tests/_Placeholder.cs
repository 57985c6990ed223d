namespace Orchestrator.Evaluation.Tests;
