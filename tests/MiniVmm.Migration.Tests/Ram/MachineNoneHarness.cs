using Microsoft.Extensions.DependencyInjection;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Ram;

/// <summary>
/// A MiniVmm <c>-M none</c> machine built the way the host builds it (AddMachineNone), with a
/// manual clock, plus helpers that save it into a stream and load a stream into it.
/// </summary>
internal sealed class MachineNoneHarness : IDisposable
{
    private readonly ServiceProvider _provider;

    public MachineNoneHarness(long ramSize)
    {
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(Time);
        services.AddMachineNone(ramSize);
        _provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
        Vm = _provider.GetRequiredService<VirtualMachine>();
        Memory = _provider.GetRequiredService<GuestMemory>();
        Ram = _provider.GetRequiredService<RamMigrationHandler>();
        GlobalState = _provider.GetRequiredService<GlobalState>();
        Registry = _provider.GetRequiredService<SaveStateRegistry>();
        Options = _provider.GetRequiredService<SavevmOptions>();
    }

    public ManualTimeProvider Time { get; } = new();

    public VirtualMachine Vm { get; }

    public GuestMemory Memory { get; }

    public RamMigrationHandler Ram { get; }

    public GlobalState GlobalState { get; }

    public SaveStateRegistry Registry { get; }

    public SavevmOptions Options { get; }

    public IServiceProvider Services => _provider;

    /// <summary>Writes the fixture's loader inputs into RAM, as QEMU's -device loader does.</summary>
    public void LoadFixtureInputs()
    {
        foreach ((string path, long address) in FixtureFiles.LoaderInputs)
        {
            Memory.LoadFile(path, address);
        }
    }

    /// <summary>
    /// Saves the machine as a QEMU migration does with the VM as it is: header, setup, iterations
    /// until RAM reports finished (a new rate window before each), completion with the big lock.
    /// </summary>
    public byte[] SaveStream(long rateLimitBytes = 0, Action<SaveStateWriter>? afterSetup = null)
    {
        using var output = new MemoryStream();
        using (var writer = new MigrationStreamWriter(output, leaveOpen: true) { RateLimitBytes = rateLimitBytes })
        {
            var save = new SaveStateWriter(Registry, writer, Options, Vm.Bql);
            save.WriteHeader();
            save.Setup();
            afterSetup?.Invoke(save);
            for (int round = 0; ; round++)
            {
                Assert.That(round, Is.LessThan(100_000), "iteration never finished");
                writer.StartNewRateWindow();
                if (save.Iterate() == IterationOutcome.Finished)
                {
                    break;
                }
            }

            using (Vm.Bql.Acquire())
            {
                save.CompletePrecopy();
                save.Cleanup();
            }
        }

        return output.ToArray();
    }

    /// <summary>Loads a whole stream with the big lock held.</summary>
    public LoadResult Load(byte[] stream) => Load(new MemoryStream(stream, writable: false));

    /// <summary>Loads a whole stream with the big lock held.</summary>
    public LoadResult Load(System.IO.Stream stream)
    {
        using var reader = new MigrationStreamReader(stream);
        using (Vm.Bql.Acquire())
        {
            return new SaveStateLoader(Registry, Options, Vm.Bql).Load(reader);
        }
    }

    /// <summary>All of guest RAM as one array.</summary>
    public byte[] ReadAllRam()
    {
        byte[] image = new byte[Memory.TotalBytes];
        Memory.Read(0, image);
        return image;
    }

    public void Dispose() => _provider.Dispose();
}
