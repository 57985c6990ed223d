namespace Orchestrator.Training.Tests;
