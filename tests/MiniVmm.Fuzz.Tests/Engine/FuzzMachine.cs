using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MiniVmm.GuestHarness;
using MiniVmm.Host.CommandLine;
using MiniVmm.Devices.Models;
using MiniVmm.Vfio.Migration;
using MiniVmm.Host.Hosting;
using MiniVmm.Host.Machine;
using MiniVmm.Host.Qmp;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Ram;
using MiniVmm.Runstate;

namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>What a <see cref="FuzzMachine"/> is made of, as <c>minivmm run</c> options.</summary>
/// <param name="MemoryBytes"><c>-m</c>; 0 for none.</param>
/// <param name="SampleSeed"><c>-device x-sample,id=s0,seed=N</c>; null for none.</param>
/// <param name="Vfio"><c>-device vfio-emu,id=v0,state-size=1</c> (1 MiB of device state).</param>
/// <param name="Harness"><c>-guest harness</c>, with a <see cref="FakeHarness"/> connected.</param>
internal sealed record MachineShape(ulong MemoryBytes, ulong? SampleSeed, bool Vfio, bool Harness)
{
    /// <summary>The destination every stream seed loads into: 64 MiB as the QEMU fixture, every device kind.</summary>
    public static MachineShape Everything { get; } = new(64 << 20, 0, Vfio: true, Harness: true);
}

/// <summary>
/// A MiniVmm machine built in process the way <c>minivmm run</c> builds it (the host's
/// <c>AddQmp</c> and <c>AddMachine</c> from parsed options), for writing seeds and for loading
/// mutated streams into a fresh machine per case.
/// </summary>
internal sealed class FuzzMachine : IDisposable
{
    private readonly ServiceProvider _provider;
    private readonly string? _socketPath;
    private FakeHarness? _harness;

    private FuzzMachine(ServiceProvider provider, VmOptions options, string? socketPath)
    {
        _provider = provider;
        _socketPath = socketPath;
        Options = options;
        Vm = provider.GetRequiredService<VirtualMachine>();
        Migration = provider.GetRequiredService<MigrationCoordinator>();
    }

    public VmOptions Options { get; }

    public VirtualMachine Vm { get; }

    public MigrationCoordinator Migration { get; }

    public GuestMemory? Memory => _provider.GetService<GuestMemory>();

    public IServiceProvider Services => _provider;

    /// <summary>The connected fake harness, with a <c>-guest harness</c> shape.</summary>
    public FakeHarness? Harness => _harness;

    /// <summary>
    /// Builds the machine, initialises it as <c>minivmm run</c> does and, with a harness, connects
    /// a <see cref="FakeHarness"/> whose state is <paramref name="harnessState"/>.
    /// </summary>
    /// <param name="shape">The devices.</param>
    /// <param name="socketDirectory">Where the harness socket goes.</param>
    /// <param name="logs">Receives the machine's warnings and errors; null drops them.</param>
    /// <param name="harnessState">What the fake harness saves.</param>
    public static FuzzMachine Create(MachineShape shape, string socketDirectory, ILoggerProvider? logs = null, byte[]? harnessState = null)
    {
        string? socketPath = shape.Harness
            ? Path.Combine(socketDirectory, $"h-{Guid.NewGuid():N}.sock")
            : null;
        var devices = new List<DeviceSpec>();
        if (shape.SampleSeed is { } seed)
        {
            devices.Add(VmOptionsParser.ParseDevice($"x-sample,id=s0,seed={seed}"));
        }

        if (shape.Vfio)
        {
            devices.Add(VmOptionsParser.ParseDevice("vfio-emu,id=v0,state-size=1"));
        }

        var options = new VmOptions
        {
            Machine = VmOptionsParser.ParseMachine("none"),
            MemoryBytes = shape.MemoryBytes,
            Devices = devices,
            Incoming = "defer",
            Guest = socketPath is null
                ? GuestSelection.None
                : VmOptionsParser.ParseGuest($"harness,socket={socketPath},pause-timeout=5000,connect-timeout=5000"),
        };

        var services = new ServiceCollection();
        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        services.AddLogging(logging =>
        {
            logging.ClearProviders();
            logging.SetMinimumLevel(LogLevel.Warning);
            if (logs is not null)
            {
                logging.AddProvider(logs);
            }
        });
        services.AddSingleton(provider => new VirtualMachine(
            provider.GetRequiredService<TimeProvider>(), RunState.Prelaunch, logger: provider.GetRequiredService<ILogger<VirtualMachine>>()));
        services.AddSingleton<ShutdownLatch>();
        services.AddQmp();
        services.AddMachine(options);
        ServiceProvider provider = services.BuildServiceProvider();
        var machine = new FuzzMachine(provider, options, socketPath);
        try
        {
            using (machine.Vm.Bql.Acquire())
            {
                _ = provider.GetService<HarnessGuest>();
                _ = provider.GetService<VfioMigrationBlockers>();
            }

            if (provider.GetService<HarnessGuest>() is { } guest)
            {
                machine._harness = FakeHarness.Connect(socketPath!, harnessState ?? [1, 2, 3, 4]);
                long deadline = Environment.TickCount64 + 10_000;
                while (guest.Connection is null)
                {
                    if (Environment.TickCount64 > deadline)
                    {
                        throw new InvalidOperationException($"the fake harness never finished its handshake on {socketPath}");
                    }

                    Thread.Sleep(1);
                }
            }

            return machine;
        }
        catch
        {
            machine.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Puts the machine where <c>minivmm run -incoming defer</c> (with or without <c>-S</c>) leaves
    /// it, with <paramref name="capabilities"/> on.
    /// </summary>
    public void EnterIncoming(bool startPaused, params string[] capabilities)
    {
        using (Vm.Bql.Acquire())
        {
            Vm.Autostart = !startPaused;
            Vm.SetRunState(RunState.InMigrate);
        }

        Migration.SetCapabilities(capabilities.Select(c => (c, true)));
    }

    public void Dispose()
    {
        _provider.Dispose();
        _harness?.Dispose();
        if (_socketPath is not null)
        {
            File.Delete(_socketPath);
        }
    }
}
