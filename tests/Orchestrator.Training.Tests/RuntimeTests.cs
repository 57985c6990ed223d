using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

public sealed class RuntimeTests
{
    [Fact]
    public void Native_library_loads_and_describes_itself()
    {
        TorchRuntime.EnsureAvailable();
        TorchRuntime.EnsureAvailable(); // idempotent
        Assert.True(TorchRuntime.IsInitialized);
        string description = TorchRuntime.Describe();
        Assert.Matches(@"^cpu, \d+ threads?, torch 2\.10$", description);
    }

    [Fact]
    public void Thread_count_can_be_set_explicitly()
    {
        int before = TorchRuntime.Threads;
        try
        {
            TorchRuntime.EnsureAvailable(threads: 1);
            Assert.Equal(1, torch.get_num_threads());
            Assert.Contains("1 thread,", TorchRuntime.Describe());
        }
        finally
        {
            TorchRuntime.EnsureAvailable(threads: before);
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => TorchRuntime.EnsureAvailable(threads: 0));
    }

    [Fact]
    public async Task A_pinned_thread_keeps_its_own_count_whatever_other_threads_set()
    {
        TorchRuntime.EnsureAvailable();
        int before = torch.get_num_threads();
        using var bothPinned = new Barrier(2);
        int Pin(int n)
        {
            TorchRuntime.PinCurrentThread(n);
            // The other thread has pinned its own count (and set the process-wide one) since; bounded, should it fail.
            if (!bothPinned.SignalAndWait(TimeSpan.FromMinutes(2))) throw new TimeoutException("the other thread stopped");
            using var a = torch.ones(512, 512);
            using var b = a.matmul(a); // parallel work after the other's pin
            return torch.get_num_threads();
        }

        try
        {
            var one = Task.Factory.StartNew(() => Pin(1), TaskCreationOptions.LongRunning);
            var two = Task.Factory.StartNew(() => Pin(2), TaskCreationOptions.LongRunning);
            Assert.Equal((1, 2), (await one, await two));
        }
        finally
        {
            TorchRuntime.PinCurrentThread(before);
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => TorchRuntime.PinCurrentThread(0));
    }

    [Fact]
    public void Backward_gives_the_analytic_gradient()
    {
        TorchRuntime.EnsureAvailable();
        using var scope = NewDisposeScope();
        // f(x) = sum(3 x^2 + sin x)  =>  df/dx = 6x + cos x
        var x = tensor(new[] { -1.5, 0.0, 0.25, 2.0 }, ScalarType.Float64, requires_grad: true);
        var f = (3 * x.pow(2) + x.sin()).sum();
        f.backward();
        double[] grad = x.grad!.data<double>().ToArray();
        double[] expected = new[] { -1.5, 0.0, 0.25, 2.0 }.Select(v => 6 * v + Math.Cos(v)).ToArray();
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], grad[i], 12);
        }
    }

    [Fact]
    public void Load_failure_message_names_the_library_and_the_fixes()
    {
        string message = TorchRuntime.FailureMessage(
            "/app/libLibTorchSharp.so",
            "Unable to load shared library '/app/libLibTorchSharp.so' or one of its dependencies. In order to help diagnose loading problems, consider using a tool like strace. If you're using glibc, consider setting the LD_DEBUG environment variable: \n/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by /app/libLibTorchSharp.so)",
            "This application or script uses TorchSharp but doesn't contain a reference to libtorch-cpu-linux-x64, Version=2.10.0.0.");
        Assert.Contains("/app/libLibTorchSharp.so failed to load (/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found", message);
        Assert.DoesNotContain("strace", message);
        Assert.Contains("glibc >= 2.34", message);
        Assert.Contains("GLIBCXX_3.4.32 marked weak", message);
        Assert.Contains("dotnet build", message);
        Assert.Contains("TorchSharp reported: This application", message);
    }

    [Fact]
    public void The_thread_count_is_read_back_from_a_device_description()
    {
        Assert.Equal(TorchRuntime.Threads, TorchRuntime.ThreadsOf(TorchRuntime.Describe()));
        Assert.Equal(1, TorchRuntime.ThreadsOf("cpu, 1 thread, torch 2.10"));
        Assert.Equal(16, TorchRuntime.ThreadsOf("cpu, 16 threads, torch 2.10"));
        Assert.Null(TorchRuntime.ThreadsOf("cuda:0, NVIDIA H100"));
        Assert.Null(TorchRuntime.ThreadsOf("cpu"));
        Assert.Null(TorchRuntime.ThreadsOf("cpu, 0 threads, torch 2.10"));
        Assert.Null(TorchRuntime.ThreadsOf(null));
    }

    [Fact]
    public void Thread_environment_variable_must_be_a_positive_integer()
    {
        Assert.Null(TorchRuntime.ParseThreads(null));
        Assert.Null(TorchRuntime.ParseThreads("  "));
        Assert.Equal(3, TorchRuntime.ParseThreads(" 3 "));
        var e = Assert.Throws<ArgumentException>(() => TorchRuntime.ParseThreads("two"));
        Assert.Contains(TorchRuntime.ThreadsEnvironmentVariable, e.Message);
        Assert.Throws<ArgumentException>(() => TorchRuntime.ParseThreads("0"));
    }
}
