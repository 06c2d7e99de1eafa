using MiniVmm.Host.CommandLine;
using MiniVmm.Devices.Models;
using MiniVmm.Migration.Ram;

namespace MiniVmm.Host.Devices;

/// <summary>
/// <c>-device loader,file=F,addr=A</c> (QEMU's generic loader): copies a file into guest RAM
/// when the machine starts, before an incoming migration or the first run.
/// </summary>
public sealed class FileLoader
{
    /// <summary>Takes the loader's properties.</summary>
    public FileLoader(
        DeviceContext context,
        [DeviceProperty("file", Description = "the file to copy into guest RAM")] string file,
        [DeviceProperty("addr", Description = "the guest physical address to copy it to")] ulong addr = 0,
        [DeviceProperty("force-raw", Description = "accepted for QEMU compatibility: files are always raw")] bool forceRaw = false)
    {
        _ = forceRaw;
        File = file;
        Address = addr <= long.MaxValue ? (long)addr : throw context.Error($"addr 0x{addr:x} is out of range");
    }

    /// <summary>The file.</summary>
    public string File { get; }

    /// <summary>Where it goes.</summary>
    public long Address { get; }

    /// <summary>Copies the file into <paramref name="memory"/>.</summary>
    /// <exception cref="InvalidCommandLineException">The file is missing or does not fit in RAM.</exception>
    public void Apply(GuestMemory? memory)
    {
        if (memory is null)
        {
            throw new InvalidCommandLineException($"-device loader,file={File}: the machine has no RAM (use -m)");
        }

        try
        {
            memory.LoadFile(File, Address);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or GuestMemoryRangeException)
        {
            throw new InvalidCommandLineException($"-device loader,file={File},addr=0x{Address:x}: {error.Message}");
        }
    }
}
