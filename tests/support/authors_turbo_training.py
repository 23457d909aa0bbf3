"""The authors' CycleGAN-Turbo training step (GaParmar/img2img-turbo ``src/train_cyclegan_turbo.py`` with
``initialize_unet``, ``initialize_vae`` and ``CycleGAN_Turbo.get_traininable_params`` from ``src/cyclegan_turbo.py``),
declared here as they wrote it, in float32 as their command runs it: one pass of their loop's body (the cycle, GAN
and identity updates of the generators, each clipped and stepped; the discriminators on the fakes, then on the
reals), with their vision-aided critics (``tests/support/authors_critic.py``) and LPIPS
(``tests/support/authors_lpips.py``). Generalised only where theirs hard-codes SD-Turbo and CUDA (the base's
location, the skip convolutions' channels) and where accelerate only forwards to torch (``backward``,
``clip_grad_norm_``; gradient accumulation 1). One choice is this project's, and stated where it is made: their
generator parameter list holds conv_in's and the skip convolutions' adapters twice, so that their AdamW (with a
warning) updates those twice a step; here each parameter is listed once."""

import copy

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from peft import LoraConfig

from .authors_turbo import (
    VAE_TARGETS,
    VAE_decode,
    VAE_encode,
    _skip_convs,
    my_vae_decoder_fwd,
    my_vae_encoder_fwd,
    unet_module_lists,
)


def initialize_unet(base, rank):
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    unet.requires_grad_(False)
    unet.train()
    enc, dec, others = unet_module_lists(unet)
    for name, targets in (("default_encoder", enc), ("default_decoder", dec), ("default_others", others)):
        unet.add_adapter(
            LoraConfig(r=rank, init_lora_weights="gaussian", target_modules=targets, lora_alpha=rank), name
        )
    unet.set_adapters(["default_encoder", "default_decoder", "default_others"])
    return unet


def initialize_vae(base, rank):
    vae = AutoencoderKL.from_pretrained(base, subfolder="vae")
    vae.requires_grad_(False)
    vae.encoder.forward = my_vae_encoder_fwd.__get__(vae.encoder, vae.encoder.__class__)
    vae.decoder.forward = my_vae_decoder_fwd.__get__(vae.decoder, vae.decoder.__class__)
    vae.requires_grad_(True)
    vae.train()
    _skip_convs(vae)  # skip_conv_1..4, weights 1e-5, requires_grad as created
    vae.decoder.ignore_skip = False
    vae.decoder.gamma = 1
    vae.add_adapter(LoraConfig(r=rank, init_lora_weights="gaussian", target_modules=VAE_TARGETS), "vae_skip")
    return vae


def get_traininable_params(unet, vae_a2b, vae_b2a):
    params_gen = list(unet.conv_in.parameters())
    unet.conv_in.requires_grad_(True)
    unet.set_adapters(["default_encoder", "default_decoder", "default_others"])
    for n, p in unet.named_parameters():
        if "lora" in n and "default" in n:
            assert p.requires_grad
            params_gen.append(p)
    for vae in (vae_a2b, vae_b2a):
        for n, p in vae.named_parameters():
            if "lora" in n and "vae_skip" in n:
                assert p.requires_grad
                params_gen.append(p)
        for index in range(1, len(vae.decoder.up_blocks) + 1):  # theirs: 1 to 4, SD-Turbo's
            params_gen = params_gen + list(getattr(vae.decoder, f"skip_conv_{index}").parameters())
    # This project's choice (see the module's docstring): each parameter once.
    return list({id(p): p for p in params_gen}.values())


def forward_with_networks(x, direction, vae_enc, unet, vae_dec, sched, timesteps, text_emb):
    B = x.shape[0]
    x_enc = vae_enc(x, direction=direction).to(x.dtype)
    model_pred = unet(x_enc, timesteps, encoder_hidden_states=text_emb).sample
    x_out = torch.stack(
        [sched.step(model_pred[i], timesteps[i], x_enc[i], return_dict=True).prev_sample for i in range(B)]
    )
    return vae_dec(x_out, direction=direction)


class AuthorsTraining:
    """Their networks, optimizers and loop body. ``disc_a`` judges domain B (fake_b against img_b), ``disc_b``
    domain A, as in their script."""

    def __init__(self, base, args, fixed_a2b_emb_base, fixed_b2a_emb_base, make_disc, net_lpips):
        self.args = args
        self.sched = DDPMScheduler.from_pretrained(base, subfolder="scheduler")
        self.sched.set_timesteps(1, device="cpu")
        self.sched.alphas_cumprod = self.sched.alphas_cumprod.cpu()
        self.unet = initialize_unet(base, args["lora_rank_unet"])
        vae_a2b = initialize_vae(base, args["lora_rank_vae"])
        self.unet.conv_in.requires_grad_(True)
        vae_b2a = copy.deepcopy(vae_a2b)
        self.params_gen = get_traininable_params(self.unet, vae_a2b, vae_b2a)
        self.vae_enc = VAE_encode(vae_a2b, vae_b2a=vae_b2a)
        self.vae_dec = VAE_decode(vae_a2b, vae_b2a=vae_b2a)
        self.net_disc_a, self.net_disc_b = make_disc(), make_disc()
        adam = dict(lr=args["learning_rate"], betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
        self.optimizer_gen = torch.optim.AdamW(self.params_gen, **adam)
        params_disc = list(self.net_disc_a.parameters()) + list(self.net_disc_b.parameters())
        self.optimizer_disc = torch.optim.AdamW(params_disc, **adam)
        self.net_lpips = net_lpips
        self.crit_cycle, self.crit_idt = torch.nn.L1Loss(), torch.nn.L1Loss()
        self.fixed_a2b_emb_base, self.fixed_b2a_emb_base = fixed_a2b_emb_base, fixed_b2a_emb_base

    def fwd(self, x, direction, emb, timesteps):
        return forward_with_networks(x, direction, self.vae_enc, self.unet, self.vae_dec, self.sched, timesteps, emb)

    def step(self, img_a, img_b) -> dict:
        args, net_lpips = self.args, self.net_lpips
        net_disc_a, net_disc_b = self.net_disc_a, self.net_disc_b
        bsz = img_a.shape[0]
        fixed_a2b_emb = self.fixed_a2b_emb_base.repeat(bsz, 1, 1)
        fixed_b2a_emb = self.fixed_b2a_emb_base.repeat(bsz, 1, 1)
        timesteps = torch.tensor([self.sched.config.num_train_timesteps - 1] * bsz, device=img_a.device).long()

        cyc_fake_b = self.fwd(img_a, "a2b", fixed_a2b_emb, timesteps)
        cyc_rec_a = self.fwd(cyc_fake_b, "b2a", fixed_b2a_emb, timesteps)
        loss_cycle_a = self.crit_cycle(cyc_rec_a, img_a) * args["lambda_cycle"]
        loss_cycle_a += net_lpips(cyc_rec_a, img_a).mean() * args["lambda_cycle_lpips"]
        cyc_fake_a = self.fwd(img_b, "b2a", fixed_b2a_emb, timesteps)
        cyc_rec_b = self.fwd(cyc_fake_a, "a2b", fixed_a2b_emb, timesteps)
        loss_cycle_b = self.crit_cycle(cyc_rec_b, img_b) * args["lambda_cycle"]
        loss_cycle_b += net_lpips(cyc_rec_b, img_b).mean() * args["lambda_cycle_lpips"]
        (loss_cycle_a + loss_cycle_b).backward()
        torch.nn.utils.clip_grad_norm_(self.params_gen, args["max_grad_norm"])
        self.optimizer_gen.step()
        self.optimizer_gen.zero_grad()

        fake_a = self.fwd(img_b, "b2a", fixed_b2a_emb, timesteps)
        fake_b = self.fwd(img_a, "a2b", fixed_a2b_emb, timesteps)
        loss_gan_a = net_disc_a(fake_b, for_G=True).mean() * args["lambda_gan"]
        loss_gan_b = net_disc_b(fake_a, for_G=True).mean() * args["lambda_gan"]
        (loss_gan_a + loss_gan_b).backward()
        torch.nn.utils.clip_grad_norm_(self.params_gen, args["max_grad_norm"])
        self.optimizer_gen.step()
        self.optimizer_gen.zero_grad()
        self.optimizer_disc.zero_grad()

        idt_a = self.fwd(img_b, "a2b", fixed_a2b_emb, timesteps)
        loss_idt_a = self.crit_idt(idt_a, img_b) * args["lambda_idt"]
        loss_idt_a += net_lpips(idt_a, img_b).mean() * args["lambda_idt_lpips"]
        idt_b = self.fwd(img_a, "b2a", fixed_b2a_emb, timesteps)
        loss_idt_b = self.crit_idt(idt_b, img_a) * args["lambda_idt"]
        loss_idt_b += net_lpips(idt_b, img_a).mean() * args["lambda_idt_lpips"]
        loss_g_idt = loss_idt_a + loss_idt_b
        loss_g_idt.backward()
        torch.nn.utils.clip_grad_norm_(self.params_gen, args["max_grad_norm"])
        self.optimizer_gen.step()
        self.optimizer_gen.zero_grad()

        params_to_clip = list(net_disc_a.parameters()) + list(net_disc_b.parameters())
        loss_D_A_fake = net_disc_a(fake_b.detach(), for_real=False).mean() * args["lambda_gan"]
        loss_D_B_fake = net_disc_b(fake_a.detach(), for_real=False).mean() * args["lambda_gan"]
        loss_D_fake = (loss_D_A_fake + loss_D_B_fake) * 0.5
        loss_D_fake.backward()
        torch.nn.utils.clip_grad_norm_(params_to_clip, args["max_grad_norm"])
        self.optimizer_disc.step()
        self.optimizer_disc.zero_grad()

        loss_D_A_real = net_disc_a(img_b, for_real=True).mean() * args["lambda_gan"]
        loss_D_B_real = net_disc_b(img_a, for_real=True).mean() * args["lambda_gan"]
        loss_D_real = (loss_D_A_real + loss_D_B_real) * 0.5
        loss_D_real.backward()
        torch.nn.utils.clip_grad_norm_(params_to_clip, args["max_grad_norm"])
        self.optimizer_disc.step()
        self.optimizer_disc.zero_grad()

        detach = lambda x: float(x.detach())  # noqa: E731
        return {
            "cycle": detach(loss_cycle_a + loss_cycle_b),
            "gan": detach(loss_gan_a + loss_gan_b),
            "idt": detach(loss_g_idt),
            "disc_a": detach(loss_D_A_fake) + detach(loss_D_A_real),
            "disc_b": detach(loss_D_B_fake) + detach(loss_D_B_real),
        }
