namespace Orchestrator.Core.Tests;
