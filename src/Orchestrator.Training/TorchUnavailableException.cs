namespace Orchestrator.Training;

/// <summary>
/// TorchSharp's native library (libLibTorchSharp.so and libtorch) could not be loaded or initialised.
/// The message names the library that failed and the usual fixes; the inner exception carries TorchSharp's own report.
/// </summary>
public sealed class TorchUnavailableException : Exception
{
    public TorchUnavailableException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}
