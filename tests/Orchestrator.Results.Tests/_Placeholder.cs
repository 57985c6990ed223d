namespace Orchestrator.Results.Tests;
