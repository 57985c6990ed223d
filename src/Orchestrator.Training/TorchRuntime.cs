using System.Globalization;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// One place that loads TorchSharp's native backend, sets the number of intra-op threads and describes the runtime.
/// Call <see cref="EnsureAvailable"/> before touching any tensor: a failure then surfaces as a
/// <see cref="TorchUnavailableException"/> with an actionable message instead of TorchSharp's misleading
/// "doesn't contain a reference to libtorch-cpu-linux-x64".
/// </summary>
public static class TorchRuntime
{
    /// <summary>Environment variable with the number of torch intra-op threads (a positive integer).</summary>
    public const string ThreadsEnvironmentVariable = "ORCHESTRATOR_TORCH_THREADS";

    private static readonly Lock Gate = new();
    private static bool _initialized;
    private static TorchUnavailableException? _failure;

    /// <summary>Whether the native backend has been loaded successfully in this process.</summary>
    public static bool IsInitialized
    {
        get { lock (Gate) { return _initialized; } }
    }

    /// <summary>
    /// Loads the native backend once (thread-safe; later calls are cheap). Threads: <paramref name="threads"/> when given,
    /// else <see cref="ThreadsEnvironmentVariable"/> when set, else libtorch's default (the number of cores).
    /// An explicit <paramref name="threads"/> on a later call changes the thread count again.
    /// </summary>
    /// <exception cref="TorchUnavailableException">The native library could not be loaded; the failure is cached.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is not positive.</exception>
    /// <exception cref="ArgumentException">The environment variable is not a positive integer.</exception>
    public static void EnsureAvailable(int? threads = null)
    {
        if (threads is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(threads), threads, "The number of torch threads must be positive.");
        }

        lock (Gate)
        {
            if (_failure is not null)
            {
                throw _failure;
            }

            if (!_initialized)
            {
                try
                {
                    torch.InitializeDeviceType(DeviceType.CPU);
                }
                catch (Exception e)
                {
                    _failure = Diagnose(e);
                    throw _failure;
                }

                _initialized = true;
                threads ??= ParseThreads(Environment.GetEnvironmentVariable(ThreadsEnvironmentVariable));
            }

            if (threads is { } n && torch.get_num_threads() != n)
            {
                torch.set_num_threads(n);
            }
        }
    }

    /// <summary>
    /// Sets the torch intra-op threads of the calling thread (and the default of threads that have not run torch work yet).
    /// libtorch keeps the count per OS thread: each thread copies the process-wide count the first time it runs parallel
    /// work, and later changes elsewhere do not reach it. Training pins its own thread with this, so a cell's numbers depend
    /// on the count it was given (recorded with its result), not on what other slots, pretraining or the process set.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is not positive.</exception>
    public static void PinCurrentThread(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        EnsureAvailable();
        // The first query makes this thread take its copy of the process-wide count; setting after it makes ours stick.
        _ = torch.get_num_threads();
        torch.set_num_threads(threads);
    }

    /// <summary>Loads the backend if needed and describes it, e.g. "cpu, 2 threads, torch 2.10".</summary>
    public static string Describe()
    {
        EnsureAvailable();
        string version = torch.__version__;
        string[] parts = version.Split('.');
        string shortVersion = parts.Length >= 2 ? parts[0] + "." + parts[1] : version;
        int n = torch.get_num_threads();
        return string.Create(CultureInfo.InvariantCulture, $"cpu, {n} thread{(n == 1 ? "" : "s")}, torch {shortVersion}");
    }

    /// <summary>
    /// The thread count in a CPU description written by <see cref="Describe"/> ("cpu, 1 thread, torch 2.10" → 1); null for
    /// anything else (another device, or an older description without it).
    /// </summary>
    public static int? ThreadsOf(string? description)
    {
        if (description is null || !description.StartsWith("cpu, ", StringComparison.Ordinal)) return null;
        string[] words = description[5..].Split(' ', 2);
        return words.Length == 2 && words[1].StartsWith("thread", StringComparison.Ordinal) &&
               int.TryParse(words[0], NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0
            ? n
            : null;
    }

    /// <summary>The current number of torch intra-op threads (loads the backend if needed).</summary>
    public static int Threads
    {
        get
        {
            EnsureAvailable();
            return torch.get_num_threads();
        }
    }

    /// <summary>The thread count <see cref="ThreadsEnvironmentVariable"/> sets; null when it is not set.</summary>
    /// <exception cref="ArgumentException">The variable is not a positive integer.</exception>
    public static int? ThreadsFromEnvironment() => ParseThreads(Environment.GetEnvironmentVariable(ThreadsEnvironmentVariable));

    /// <summary>Parses the value of <see cref="ThreadsEnvironmentVariable"/>: null/blank → null (internal for tests).</summary>
    internal static int? ParseThreads(string? raw)
    {
        if (string.IsNullOrWhiteSpace(raw))
        {
            return null;
        }

        if (!int.TryParse(raw.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n <= 0)
        {
            throw new ArgumentException(
                $"{ThreadsEnvironmentVariable}='{raw}' is not a positive integer (the number of torch intra-op threads).");
        }

        return n;
    }

    /// <summary>
    /// TorchSharp's own error is a TypeInitializationException around a NotSupportedException that blames a missing
    /// package reference. Loading the two native libraries by hand yields the real dynamic-linker message.
    /// </summary>
    private static TorchUnavailableException Diagnose(Exception error)
    {
        string baseDir = Path.GetDirectoryName(typeof(torch).Assembly.Location) is { Length: > 0 } d ? d : AppContext.BaseDirectory;
        string? failedLibrary = null;
        string? linkerMessage = null;
        if (OperatingSystem.IsLinux())
        {
            foreach (string name in new[] { "libtorch_cpu.so", "libLibTorchSharp.so" })
            {
                string path = Path.Combine(baseDir, name);
                if (!File.Exists(path))
                {
                    failedLibrary = path;
                    linkerMessage = "the file does not exist";
                    break;
                }

                if (!NativeLibrary.TryLoad(path, out _))
                {
                    failedLibrary = path;
                    try
                    {
                        NativeLibrary.Load(path);
                    }
                    catch (Exception e)
                    {
                        linkerMessage = e.Message;
                    }

                    break;
                }
            }
        }

        string torchSharpMessage = (error.InnerException ?? error).Message.Split('\n')[0].Trim();
        return new TorchUnavailableException(FailureMessage(failedLibrary, linkerMessage, torchSharpMessage), error);
    }

    /// <summary>The text of <see cref="TorchUnavailableException"/> (internal for tests).</summary>
    internal static string FailureMessage(string? failedLibrary, string? linkerMessage, string torchSharpMessage)
    {
        // .NET prefixes the dynamic linker's message with advice about strace/LD_DEBUG; keep the linker's own words.
        string? reason = linkerMessage?.ReplaceLineEndings(" ").Trim();
        const string marker = "environment variable:";
        if (reason is not null && reason.IndexOf(marker, StringComparison.Ordinal) is int at and >= 0)
        {
            reason = reason[(at + marker.Length)..].Trim();
        }

        var message = new System.Text.StringBuilder();
        message.Append("TorchSharp's native backend could not be loaded");
        message.Append(failedLibrary is null
            ? " (libtorch_cpu.so and libLibTorchSharp.so load when tried directly; see the inner exception)."
            : $": {failedLibrary} failed to load ({reason}).");
        message.Append(" Requirements: Linux x64 with glibc >= 2.34 (cannot be patched around);");
        message.Append(" the process must reference libtorch-cpu-linux-x64 (UsesLibTorch=true and RuntimeIdentifier=linux-x64 in the project);");
        message.Append(" libLibTorchSharp.so in the output folder must be the copy patched by our build (GLIBCXX_3.4.32 marked weak, see build/LibTorchSharp.targets;");
        message.Append(" check with `objdump -p libLibTorchSharp.so | grep 3.4.32`, flags 0x02) - rebuild with `dotnet build` if it is not.");
        message.Append(" TorchSharp reported: ").Append(torchSharpMessage);
        return message.ToString();
    }
}
