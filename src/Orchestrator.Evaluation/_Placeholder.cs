namespace Orchestrator.Evaluation;
