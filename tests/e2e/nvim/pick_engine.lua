-- Headless Neovim flow: `engine` from setup reaches :PasDelegate's task; :PasDelegate! picks the
-- model, then the engine (offered because more than native is installed). Logs each queued task.
local flow = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":h") .. "/flow.lua")
local say, wait = flow.say, flow.wait

local function run()
  local pas = flow.pas({ "openai/pasd-offline", "openai/pasd-offline-b" }, { engine = "aider" })
  local bufnr = flow.open(pas)
  local queued = {}
  vim.notify = function(msg)
    local id = tostring(msg):match("^PAS: task (%w+) queued$")
    if id then
      table.insert(queued, id)
    else
      say("notify: " .. tostring(msg))
    end
  end
  vim.ui.input = function(_, on_confirm)
    on_confirm("note the engine")
  end

  vim.cmd("PasDelegate") -- no pick: setup's engine
  wait(20000, "the first task", function()
    return #queued == 1
  end)
  say("setup engine: " .. queued[1])

  vim.ui.select = function(items, opts, on_choice)
    say("select " .. opts.prompt .. ": " .. table.concat(items, ", "))
    if opts.prompt == "PAS: model" then
      on_choice("openai/pasd-offline-b")
    else
      on_choice("native")
    end
  end
  vim.cmd("PasDelegate!")
  wait(20000, "the picked task", function()
    return #queued == 2
  end)
  say("picked: " .. queued[2])
  say("ok")
end

flow.run(run)
