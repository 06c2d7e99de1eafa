using MiniVmm.Host.CommandLine;
using MiniVmm.Migration.Ram;

namespace MiniVmm.Host.Devices;

/// <summary>
/// <c>-device loader,file=F,addr=A</c> (QEMU's generic loader): copies a file into guest RAM
/// when the machine starts, before an incoming migration or the first run.
/// </summary>
public sealed record FileLoader(string File, long Address)
{
    /// <summary>Reads the device's properties.</summary>
    public static FileLoader From(DeviceSpec device)
    {
        device.CheckKnown("file", "addr", "id", "force-raw");
        ulong address = device.GetNumber("addr", 0);
        if (address > long.MaxValue)
        {
            throw new InvalidCommandLineException($"-device {device.Text}: addr 0x{address:x} is out of range");
        }

        return new FileLoader(device.Require("file"), (long)address);
    }

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
