using Microsoft.Extensions.DependencyInjection;
using MiniVmm.Host.Qmp.Commands;

namespace MiniVmm.Host.Qmp;

/// <summary>Registers the QMP server and its commands.</summary>
public static class QmpServiceCollectionExtensions
{
    /// <summary>Adds the server, the dispatcher, the command registry, the table of passed descriptors and the built-in commands.</summary>
    public static IServiceCollection AddQmp(this IServiceCollection services)
    {
        services.AddSingleton<QmpCommandRegistry>();
        services.AddSingleton<QmpDispatcher>();
        services.AddSingleton<QmpServer>();
        services.AddSingleton<PassedDescriptorTable>();
        return services
            .AddQmpCommand<QmpCapabilitiesCommand>()
            .AddQmpCommand<QueryStatusCommand>()
            .AddQmpCommand<StopCommand>()
            .AddQmpCommand<ContCommand>()
            .AddQmpCommand<QuitCommand>()
            .AddQmpCommand<QueryVersionCommand>()
            .AddQmpCommand<QueryCommandsCommand>()
            .AddQmpCommand<GetfdCommand>()
            .AddQmpCommand<ClosefdCommand>();
    }

    /// <summary>Adds one QMP command; its constructor's dependencies come from the container.</summary>
    public static IServiceCollection AddQmpCommand<TCommand>(this IServiceCollection services)
        where TCommand : class, IQmpCommand
    {
        services.AddSingleton<IQmpCommand, TCommand>();
        return services;
    }
}
