using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using MiniVmm.Host.Hosting;
using MiniVmm.Devices.Models;
using MiniVmm.Host.Qmp;

namespace MiniVmm.Host.CommandLine;

/// <summary>
/// <c>minivmm run</c>: runs a VM, with QEMU's option spelling so that a script written for
/// qemu-system-x86_64 drives it unchanged. Add an option by declaring it here, reading it in
/// <see cref="ReadArguments"/> and decoding it in <see cref="VmOptionsParser"/>.
/// </summary>
public sealed class RunCommand : Command
{
    private readonly Option<string[]> _machine = Repeatable("-machine", "TYPE[,memory-backend=ID][,x-incoming-prefault=on|off]", "select the machine (only 'none'); memory-backend=ID takes guest RAM from -object memory-backend-memfd,id=ID; x-incoming-prefault=off stops -incoming from allocating RAM in the background while it waits", "-M", "--machine");
    private readonly Option<string[]> _memory = Repeatable("-m", "[size=]SIZE", "guest RAM size: a bare number is MiB; suffixes K, M, G, T");
    private readonly Option<bool> _startPaused = new("-S") { Description = "do not start the VM: stay in prelaunch until 'cont'" };
    private readonly Option<bool> _memPrealloc = new("-mem-prealloc", "--mem-prealloc") { Description = "allocate all guest RAM at start-up (before QMP answers), as QEMU does" };
    private readonly Option<bool> _noDefaults = new("-nodefaults", "--nodefaults") { Description = "create no default devices" };
    private readonly Option<string[]> _display = Repeatable("-display", "TYPE", "display type (only 'none')", "--display");
    private readonly Option<string[]> _name = Repeatable("-name", "[guest=]NAME", "the guest's name", "--name");
    private readonly Option<string[]> _pidFile = Repeatable("-pidfile", "FILE", "write the process id to FILE, removed on exit", "--pidfile");
    private readonly Option<string[]> _qmp = Repeatable("-qmp", "unix:PATH,server=on,wait=off", "listen for QMP clients on a UNIX socket", "--qmp");
    private readonly Option<string[]> _incoming = Repeatable("-incoming", "URI|defer", "wait for an incoming migration (tcp:, unix:, exec:, fd:, file:), or 'defer' for migrate-incoming", "--incoming");
    private readonly Option<string[]> _guest = Repeatable("-guest", "dirty[,rate=N] | harness,socket=PATH[,pause-timeout=MS][,connect-timeout=MS]", "the guest: 'dirty' (built in) increments the first byte of every page from 1 MiB up; 'harness' runs the guest in a harness process that connects to PATH", "--guest");
    private readonly Option<string[]> _object = Repeatable("-object", "tls-creds-x509,id=ID,dir=DIR[,endpoint=server|client][,verify-peer=on|off] | memory-backend-memfd,id=ID,size=SIZE[,hugetlb=on][,prealloc=on]", "create an object: TLS credentials for migration (ca-cert.pem, server-cert.pem, server-key.pem, client-cert.pem, client-key.pem in DIR), used by the tls-creds migration parameter; or a memfd memory backend, made guest RAM by -machine memory-backend=ID", "--object");
    private readonly Option<string[]> _device = Repeatable("-device", "DRIVER[,PROP=VALUE...]", "add a device (-device help lists the models, -device NAME,help their properties)", "--device");

    /// <summary>Declares the options.</summary>
    public RunCommand()
        : base("run", "Run a VM controlled over QMP, with QEMU's command-line options")
    {
        Options.Add(_machine);
        Options.Add(_memory);
        Options.Add(_startPaused);
        Options.Add(_memPrealloc);
        Options.Add(_noDefaults);
        Options.Add(_display);
        Options.Add(_name);
        Options.Add(_pidFile);
        Options.Add(_qmp);
        Options.Add(_incoming);
        Options.Add(_device);
        Options.Add(_guest);
        Options.Add(_object);
        SetAction((parseResult, _) => RunAsync(parseResult));
    }

    /// <summary>The options as typed.</summary>
    public RunArguments ReadArguments(ParseResult parseResult) => new()
    {
        Machine = parseResult.GetValue(_machine) ?? [],
        Memory = parseResult.GetValue(_memory) ?? [],
        StartPaused = parseResult.GetValue(_startPaused),
        MemPrealloc = parseResult.GetValue(_memPrealloc),
        NoDefaults = parseResult.GetValue(_noDefaults),
        Display = parseResult.GetValue(_display) ?? [],
        Name = parseResult.GetValue(_name) ?? [],
        PidFile = parseResult.GetValue(_pidFile) ?? [],
        Qmp = parseResult.GetValue(_qmp) ?? [],
        Incoming = parseResult.GetValue(_incoming) ?? [],
        Devices = parseResult.GetValue(_device) ?? [],
        Guest = parseResult.GetValue(_guest) ?? [],
        Objects = parseResult.GetValue(_object) ?? [],
    };

    private static Option<string[]> Repeatable(string name, string valueSyntax, string description, params string[] aliases) =>
        new(name, aliases)
        {
            Description = description,
            HelpName = valueSyntax,
            AllowMultipleArgumentsPerToken = false,
            Arity = ArgumentArity.OneOrMore,
        };

    private async Task<int> RunAsync(ParseResult parseResult)
    {
        TextWriter error = parseResult.InvocationConfiguration.Error;
        VmOptions options;
        try
        {
            options = VmOptionsParser.Validate(VmOptionsParser.Parse(ReadArguments(parseResult)));
        }
        catch (InvalidCommandLineException invalid)
        {
            await error.WriteLineAsync($"minivmm: {invalid.Message}").ConfigureAwait(false);
            return 1;
        }

        ServiceProvider services;
        try
        {
            services = new ServiceCollection().AddMiniVmmHost(options).BuildServiceProvider();
        }
        catch (InvalidCommandLineException invalid)
        {
            await error.WriteLineAsync($"minivmm: {invalid.Message}").ConfigureAwait(false);
            return 1;
        }

        await using (services.ConfigureAwait(false))
        {
            try
            {
                var catalog = services.GetRequiredService<DeviceModelCatalog>();
                if (DeviceHelp(options.Devices) is { } help)
                {
                    TextWriter output = parseResult.InvocationConfiguration.Output;
                    await output.WriteAsync(help.Length == 0 ? catalog.Help() : catalog.Help(help)).ConfigureAwait(false);
                    return 0;
                }

                catalog.Check(options.Devices);
                return await services.GetRequiredService<VmRunner>().RunAsync().ConfigureAwait(false);
            }
            catch (Exception failure) when (failure is QmpServerException or PidFileException or InvalidCommandLineException
                or DeviceConfigurationException or MiniVmm.GuestHarness.GuestHarnessSetupException
                or MiniVmm.Migration.Ram.RamBackingException)
            {
                await error.WriteLineAsync($"minivmm: {failure.Message}").ConfigureAwait(false);
                return 1;
            }
        }
    }

    /// <summary>
    /// <c>-device help</c> gives "" (list the models), <c>-device NAME,help</c> gives NAME (list
    /// its properties); null when no <c>-device</c> asks for help.
    /// </summary>
    private static string? DeviceHelp(IEnumerable<DeviceSpec> devices)
    {
        foreach (DeviceSpec device in devices)
        {
            if (device.Driver is "help" or "?")
            {
                return "";
            }

            if (device.Properties.ContainsKey("help") || device.Properties.ContainsKey("?"))
            {
                return device.Driver;
            }
        }

        return null;
    }
}
